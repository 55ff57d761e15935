"""The fleet test infrastructure itself: namespaced hosts reached over SSH through the real provider hook.

Three hosts, each a network namespace with its own address, sshd, cache and
repository. The hook (an ``ovcache`` connection per host, from environment
variables) asks each agent for its version and warms a real model on each;
one host going down (sshd stopped: refused; cable unplugged: timeouts) fails
with an error that names it while the others keep working; teardown leaves
nothing behind, and a killed run's leftovers are removed by ``cleanup_stale``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ovcache.fleet.inventory import load_fleet
from airflow_ovcache.samples import build_ir
from tests.fleet.conftest import require_fleet
from tests.infra.fleet import Fleet, cleanup_stale, list_links, list_namespaces, runs

pytestmark = [pytest.mark.root, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parents[2]


def ours(prefix: str) -> list[str]:
    """Namespaces and root-namespace links whose names start with ``prefix``, as ``ip`` lists them now."""
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[0] for line in netns.splitlines() if line.strip()]
    names += [line.split(":")[1].strip().split("@")[0] for line in links.splitlines() if line.strip()]
    return sorted(n for n in names if n.startswith(prefix))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One version folder of a ~1 MB IR model."""
    folder = tmp_path_factory.mktemp("small-model")
    build_ir(folder / "model.xml", size_mb=1.0, seed=11)
    return folder


def test_three_hosts_through_the_hook(
    airflow_db: Path, small_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_fleet()
    from airflow_ovcache.hooks.errors import SSHConnectError
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    started = time.monotonic()
    with Fleet(3, tmp_path / "fleet") as fleet:
        prefix = fleet.name_prefix
        h1, h2, h3 = fleet
        assert ours(prefix) == sorted([fleet.bridge, *(h.namespace for h in fleet), *(h.veth for h in fleet)])

        # Topology: own address on eth0, one route (the test subnet), nothing beyond it.
        assert fleet.subnet is not None and len({h.address for h in fleet}) == 3
        for host in fleet:
            assert host.run("ip -4 -o addr show dev eth0", check=True).stdout.split()[3] == f"{host.address}/24"
            routes = host.run("ip -4 route", check=True).stdout.strip().splitlines()
            assert len(routes) == 1 and routes[0].startswith(f"{fleet.subnet} dev eth0"), routes
            assert host.cache_dir.parent == host.repository.parent == tmp_path / "fleet" / host.name
        # Isolation: a host reaches its own sshd but not a sibling's (the root namespace reaches all).
        probe = "timeout 2 bash -c '</dev/tcp/{}/22'"
        assert h1.run(probe.format(h1.address)).returncode == 0
        assert h1.run(probe.format(h2.address)).returncode != 0

        for name, value in fleet.airflow_env().items():
            monkeypatch.setenv(name, value)
        for host in fleet:  # no host name in the connection: the name must come from the host's side
            monkeypatch.setenv(f"AIRFLOW_CONN_{host.conn_id.upper()}_ANON", json.dumps(host.ovcache_conn(host_name=False)))

        # `ovcache version --json` on each host, over SSH from the root namespace.
        for host in fleet:
            info = OvcacheHook(f"{host.conn_id}_anon").agent_version(timeout=60)
            assert info.host == host.name, f"{host.address} answered as {info.host}"
            assert info.agent_version and info.openvino

        # A real warm on each host, into that host's own cache.
        for host in fleet:
            host.add_model(small_model, "mlp", 1)
            report = OvcacheHook(host.conn_id).warm(models=["mlp"], versions="all")
            assert report.host == host.name and report.cache_dir == str(host.cache_dir)
            assert [(i.model, i.version, i.status) for i in report.items] == [("mlp", 1, "warmed")]
        assert [len(h.blobs()) for h in fleet] == [1, 1, 1]

        # The inventory names these hosts, their connections and directories.
        inventory = load_fleet(fleet.inventory_toml())
        assert [(h.name, h.conn_id, h.cache_dir, h.repository) for h in inventory.hosts] == [
            (h.name, h.conn_id, str(h.cache_dir), str(h.repository)) for h in fleet
        ]

        # h3 goes down: a connection error that names h3; h1 is unaffected.
        h3.stop_sshd()
        with pytest.raises(SSHConnectError) as err:
            OvcacheHook(h3.conn_id).agent_version(timeout=30)
        assert str(err.value).startswith(f"host h3: cannot connect to {h3.address}:22 after 2 attempt(s)"), str(err.value)
        assert OvcacheHook(h1.conn_id).agent_version(timeout=30).host == "h1"
        # ...and comes back with the same host key, so the pinned connection works again.
        h3.start_sshd()
        assert OvcacheHook(h3.conn_id).verify(model="mlp").problems == []

    assert ours(prefix) == [] and fleet.leftovers() == []
    assert not any(n.startswith(prefix) for n in [*list_namespaces(), *list_links()])
    assert time.monotonic() - started < 60


def test_unplugged_host_times_out_and_comes_back(
    airflow_db: Path, make_fleet: Callable[..., Fleet], monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_ovcache.hooks.errors import SSHConnectError
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    fleet = make_fleet(2)
    h1, h2 = fleet
    monkeypatch.setenv(f"AIRFLOW_CONN_{h2.conn_id.upper()}", json.dumps(h2.ovcache_conn(connect_timeout=1)))
    assert OvcacheHook(h2.conn_id).agent_version(timeout=30).host == "h2"
    h2.disconnect()  # the cable, not the service: no refusal, no answer at all
    started = time.monotonic()
    with pytest.raises(SSHConnectError) as err:
        OvcacheHook(h2.conn_id).agent_version(timeout=30)
    assert str(err.value).startswith(f"host h2: cannot connect to {h2.address}:22 after 2 attempt(s)"), str(err.value)
    assert time.monotonic() - started < 10
    assert OvcacheHook(h1.conn_id).agent_version(timeout=30).host == "h1"
    h2.reconnect()
    assert OvcacheHook(h2.conn_id).agent_version(timeout=30).host == "h2"


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a container's init may be slow to reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_run_is_cleaned_up(tmp_path: Path) -> None:
    require_fleet()
    # A prefix of its own: no other test's Fleet.start() (which cleans stale runs of "ovc-") races this one.
    prefix = "ovk-"
    workdir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.infra.fleet", "--prefix", prefix, "up", "2", str(workdir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = next((line.split()[1] for line in proc.stdout if line.startswith("ready ")), "")
        assert ready, f"the fleet did not come up: {proc.stderr.read() if proc.stderr else ''}"
        run_id = ready.removeprefix(prefix).rstrip("-")
        assert runs(prefix)[run_id] is True
        assert not any(ready in item for item in cleanup_stale(prefix))  # a live run is left alone
        assert len(ours(ready)) == 5  # bridge, 2 namespaces, 2 veths
    finally:
        proc.kill()  # SIGKILL: no teardown runs
        proc.wait(10)
    sshd_pids = [int((workdir / h / "sshd" / "sshd.pid").read_text()) for h in ("h1", "h2")]
    assert all(alive(pid) for pid in sshd_pids)  # the killed run's sshds live on in its namespaces
    assert runs(prefix)[run_id] is False

    removed = cleanup_stale(prefix)
    assert {r for r in removed if r.startswith("netns ")} == {f"netns {ready}h1", f"netns {ready}h2"}, removed
    assert f"link {ready}br" in removed
    assert ours(ready) == [] and run_id not in runs(prefix)
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in sshd_pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in sshd_pids), "cleanup_stale left the killed run's sshds running"
