"""Release warm-ups through Airflow's Edge executor, to hosts that only dial out to the API server.

One stack for the tier (``conftest.edge_stack``): API server, scheduler, DAG
processor and triggerer on PostgreSQL with ``LocalExecutor,EdgeExecutor``; two
hosts, each a network namespace whose firewall lets out only TCP to the API
server, each running ``airflow edge worker --queues <host>`` without a database.
The tests run in order and share the hosts' caches:

1. a release triggered through the REST API warms both hosts, every host task
   runs on its host's worker, and a plain ``compile_model`` with ``CACHE_DIR``
   inside each namespace loads from cache;
2. with h2's worker stopped, the next release completes on h1 and the run ends,
   within the queued-task bound, naming h2 as not reached;
3. after h2's worker is started again, a retry of h2's tasks completes it;
4. with h1's worker put into maintenance from the central site, the nightly run
   verifies h2 on its worker and its report shows h1 as unreachable.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import socket
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.fleet.edge import queued_bound_seconds
from airflow_ovcache.samples import build_ir
from tests.conftest import blobs_in
from tests.edge.conftest import NIGHTLY_DAG, RELEASE_DAG, TIMINGS
from tests.edge.stack import CACHE_OWNER, QUEUED_CHECK_INTERVAL, QUEUED_TIMEOUT, EdgeStack
from tests.infra.fleet import Host

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.timeout(900)]

HOST_TASKS = ["wait_for_version", "check_devices", "warm", "verify", "invalidate"]
# A stopped worker's state: "offline" when it told the API server on its way out, "unknown" when
# the executor gave up on its heartbeat first (seen once under a full test run's load). Either way
# no task reaches the host, which is what these tests need.
WORKER_GONE = ("offline", "unknown")
SERVE = """
import sys, openvino as ov
cm = ov.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2]})
print(bool(cm.get_property("LOADED_FROM_CACHE")))
"""
CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
    print("open")
except OSError as exc:
    print(type(exc).__name__)
"""


@contextlib.contextmanager
def diagnosed(stack: EdgeStack) -> Iterator[None]:
    """On failure, print the components' and task logs' tails (the fixture cannot see a test's failure)."""
    try:
        yield
    except BaseException:
        print(stack.diagnostics(), file=sys.stderr)
        raise


def _publish(source: Path, host: Host, version: int) -> None:
    """Publish a version folder as a release pipeline should: copy next to it, then rename into place."""
    import shutil

    staging = host.repository / "mlp" / f".incoming-{version}"
    shutil.copytree(source, staging)
    for path in [staging, *staging.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the release process's files, readable by the worker's user
    staging.rename(host.repository / "mlp" / str(version))


def _release(tmp: Path, version: int) -> Path:
    return build_ir(tmp / "release" / str(version) / "model.xml", size_mb=0.5, seed=700 + version).parent


def _serve_in_namespace(host: Host, version: int) -> bool:
    """A serving application's plain compile, inside the host's namespace: does it load from the cache?"""
    model = host.repository / "mlp" / str(version) / "model.xml"
    proc = host.run([sys.executable, "-c", SERVE, str(model), str(host.cache_dir)], timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1] == "True"


def _versions(host: Host) -> list[tuple[str, int]]:
    manifest = Manifest.load(host.cache_dir / ".ovcache" / "manifest.json")
    return sorted((e.model, e.version) for e in manifest.entries.values())


def _when(text: str | None) -> datetime:
    assert text, "no timestamp"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _latencies(tis: dict[tuple[str, int], dict[str, Any]], host: str) -> dict[str, float]:
    """Per host-task, seconds: queued until a worker started it, and start to end (the task's own run)."""
    pickup, run, total = [], [], []
    for step in HOST_TASKS:
        ti = tis[(f"{host}.{step}", 0)]
        pickup.append((_when(ti["start_date"]) - _when(ti["queued_when"])).total_seconds())
        run.append((_when(ti["end_date"]) - _when(ti["start_date"])).total_seconds())
        total.append((_when(ti["end_date"]) - _when(ti["queued_when"])).total_seconds())
    median = {name: sorted(values)[len(values) // 2] for name, values in (("pickup", pickup), ("run", run), ("total", total))}
    check = tis[(f"{host}.check_devices", 0)]
    median["check_devices total"] = (_when(check["end_date"]) - _when(check["queued_when"])).total_seconds()
    return median


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    tmp = tmp_path_factory.mktemp("edge-models")
    return {v: _release(tmp, v) for v in (1, 2)}


@pytest.fixture(autouse=True)
def _every_worker_back(edge_stack: EdgeStack) -> Iterator[None]:
    """A test that stopped a host's worker and failed before starting it again leaves the next test a whole fleet."""
    yield
    for host in edge_stack.fleet:
        if host.name not in edge_stack.workers:
            edge_stack.start_worker(host)

            def idle(name: str = host.name) -> bool:
                return bool(edge_stack.edge_workers()[name]["state"] == "idle")

            edge_stack.wait_for(f"{host.name}'s worker to be idle", idle, 120)


def test_edge_hosts_reach_only_the_api_server(edge_stack: EdgeStack) -> None:
    """The hosts dial out to the API server's address and port and to nothing else, not even other ports there."""
    other = socket.socket()
    other.bind((edge_stack.address, 0))
    other.listen()
    try:
        for host in edge_stack.fleet:
            api = host.run([sys.executable, "-c", CONNECT, edge_stack.address, str(edge_stack.port)]).stdout.strip()
            blocked = host.run([sys.executable, "-c", CONNECT, edge_stack.address, str(other.getsockname()[1])]).stdout.strip()
            database = host.run([sys.executable, "-c", CONNECT, edge_stack.address, "5432"]).stdout.strip()
            assert (api, blocked, database) == ("open", "TimeoutError", "TimeoutError"), host.name
    finally:
        other.close()
    workers = edge_stack.edge_workers()
    assert {n: (w["state"], w["queues"]) for n, w in workers.items()} == {h.name: ("idle", [h.name]) for h in edge_stack.fleet}


def test_release_warms_every_edge_host_and_a_serving_compile_loads_from_cache(
    edge_stack: EdgeStack, releases: dict[int, Path]
) -> None:
    with diagnosed(edge_stack):
        for host in edge_stack.fleet:
            _publish(releases[1], host, 1)
        began = time.monotonic()
        run_id = edge_stack.trigger(RELEASE_DAG, {"model": "mlp", "version": 1})
        state = edge_stack.finished(RELEASE_DAG, run_id, timeout=300)
        TIMINGS["release, both hosts"] = time.monotonic() - began
        tis = edge_stack.task_instances(RELEASE_DAG, run_id)
        assert state == "success", {k: v["state"] for k, v in tis.items()}

        for host in edge_stack.fleet:
            for step in HOST_TASKS:
                ti = tis[(f"{host.name}.{step}", 0)]
                # run by the host's own edge worker (its name is the task's hostname), from the host's queue
                assert (ti["state"], ti["queue"], ti["hostname"], ti["executor"]) == (
                    "success",
                    host.name,
                    host.name,
                    "EdgeExecutor",
                ), ti
        for task_id, map_index in [("releases", -1), ("summary", -1), *((f"{h.name}.outcome", 0) for h in edge_stack.fleet)]:
            ti = tis[(task_id, map_index)]
            assert (ti["state"], ti["queue"], ti["executor"]) == ("success", "default", None), ti

        summary = edge_stack.xcom(RELEASE_DAG, run_id, "summary")
        assert (summary["hosts"], summary["failures"]) == (2, 0)
        for outcome in summary["outcomes"]:
            assert outcome["ok"] is True and outcome["warm"]["items"][0]["loaded_from_cache"] is True, outcome
        for host in edge_stack.fleet:
            assert _versions(host) == [("mlp", 1)]
            assert _serve_in_namespace(host, 1) is True, f"{host.name}: a serving compile did not load from cache"
            # written by the worker's user, the cache's owner, with the modes docs/security.md gives
            owner = pwd.getpwnam(CACHE_OWNER).pw_uid
            assert (host.cache_dir.stat().st_uid, host.cache_dir.stat().st_mode & 0o777) == (owner, 0o700)
            for blob in blobs_in(host.cache_dir):
                assert (blob.stat().st_uid, blob.stat().st_mode & 0o777) == (owner, 0o400), blob
            lat = _latencies(tis, host.name)
            print(f"edge host-task latency on {host.name}: {lat}", file=sys.stderr)


def test_offline_edge_host_is_named_not_reached_within_the_bound_and_a_retry_completes_it(
    edge_stack: EdgeStack, releases: dict[int, Path]
) -> None:
    h1, h2 = edge_stack.fleet["h1"], edge_stack.fleet["h2"]
    with diagnosed(edge_stack):
        edge_stack.stop_worker(h2)
        edge_stack.wait_for("h2's worker to be gone", lambda: edge_stack.edge_workers()["h2"]["state"] in WORKER_GONE, 60)
        for host in edge_stack.fleet:
            _publish(releases[2], host, 2)
        began = time.monotonic()
        run_id = edge_stack.trigger(RELEASE_DAG, {"model": "mlp", "version": 2})
        state = edge_stack.finished(RELEASE_DAG, run_id, timeout=300)
        took = time.monotonic() - began
        TIMINGS["release, h2 offline"] = took
        tis = edge_stack.task_instances(RELEASE_DAG, run_id)
        assert state == "failed", {k: v["state"] for k, v in tis.items()}

        # h1 completed; h2's first task waited its bound in the queue and failed, the rest never ran
        assert all(tis[(f"h1.{step}", 0)]["state"] == "success" for step in HOST_TASKS)
        assert tis[("h2.wait_for_version", 0)]["state"] == "failed"
        assert not tis[("h2.wait_for_version", 0)]["hostname"], tis[("h2.wait_for_version", 0)]  # no worker ran it
        assert {tis[(f"h2.{step}", 0)]["state"] for step in HOST_TASKS[1:]} == {"upstream_failed"}
        bound = queued_bound_seconds(QUEUED_TIMEOUT, 0, QUEUED_CHECK_INTERVAL)
        run_start = _when(edge_stack.request("GET", f"/api/v2/dags/{RELEASE_DAG}/dagRuns/{run_id}")["start_date"])
        waited = (_when(tis[("h2.wait_for_version", 0)]["end_date"]) - run_start).total_seconds()
        # from the run's start: the bookkeeping tasks before it (a few seconds), then at most the bound in the queue
        assert QUEUED_TIMEOUT <= waited <= bound + 15, f"h2 failed {waited:.0f}s after the run started; the bound is {bound:.0f}s"
        TIMINGS["h2 given up after"] = waited
        outcome = edge_stack.xcom(RELEASE_DAG, run_id, "h2.outcome", 0)
        assert (outcome["ok"], outcome["failed_step"], outcome["failure_kind"]) == (False, "wait_for_version", "cannot-connect")
        assert outcome["reason"].startswith("not reached: no edge worker took the host's wait_for_version task from queue h2")
        assert edge_stack.xcom(RELEASE_DAG, run_id, "h1.outcome", 0)["ok"] is True
        assert _versions(h1) == [("mlp", 1), ("mlp", 2)] and _serve_in_namespace(h1, 2) is True
        assert _versions(h2) == [("mlp", 1)]
        # a person sees the host behind: the Edge Worker page lists its worker offline (or unknown), since its last heartbeat
        assert edge_stack.edge_workers()["h2"]["state"] in WORKER_GONE

        # The host comes back; a retry of its tasks (clear h2's group and the summary) catches it up.
        edge_stack.start_worker(h2)
        edge_stack.wait_for("h2's worker to be idle again", lambda: edge_stack.edge_workers()["h2"]["state"] == "idle", 120)
        began = time.monotonic()
        cleared = edge_stack.request(
            "POST",
            f"/api/v2/dags/{RELEASE_DAG}/clearTaskInstances",
            {
                "dag_run_id": run_id,
                "task_ids": ["h2.wait_for_version"],
                "include_downstream": True,
                "only_failed": False,
                "reset_dag_runs": True,
                "dry_run": False,
            },
        )
        assert {ti["task_id"] for ti in cleared["task_instances"]} >= {f"h2.{s}" for s in HOST_TASKS} | {"h2.outcome", "summary"}
        assert "h1.warm" not in {ti["task_id"] for ti in cleared["task_instances"]}
        state = edge_stack.finished(RELEASE_DAG, run_id, timeout=300)
        TIMINGS["retry of h2"] = time.monotonic() - began
        tis = edge_stack.task_instances(RELEASE_DAG, run_id)
        assert state == "success", {k: v["state"] for k, v in tis.items()}
        assert all(tis[(f"h2.{step}", 0)]["hostname"] == "h2" for step in HOST_TASKS)
        summary = edge_stack.xcom(RELEASE_DAG, run_id, "summary")
        assert (summary["hosts"], summary["failures"]) == (2, 0)
        assert _versions(h2) == [("mlp", 1), ("mlp", 2)]
        assert _serve_in_namespace(h2, 2) is True, "h2: a serving compile did not load from cache after the retry"


def test_a_host_in_maintenance_is_unreachable_in_the_nightly_report_and_the_others_are_verified(edge_stack: EdgeStack) -> None:
    """Maintenance from the central site (the Edge Executor page's API): h1 takes no task, the report shows it behind."""
    with diagnosed(edge_stack):
        path = "/edge_worker/ui/worker/h1/maintenance"
        edge_stack.request("POST", path, {"maintenance_comment": "disk swap on h1"})
        edge_stack.wait_for(
            "h1 to enter maintenance", lambda: edge_stack.edge_workers()["h1"]["state"] == "maintenance mode", timeout=60
        )
        assert "disk swap on h1" in edge_stack.edge_workers()["h1"]["maintenance_comments"]

        began = time.monotonic()
        edge_stack.request("PATCH", f"/api/v2/dags/{NIGHTLY_DAG}", {"is_paused": False})
        run_id = edge_stack.trigger(NIGHTLY_DAG, {})
        state = edge_stack.finished(NIGHTLY_DAG, run_id, timeout=300)
        TIMINGS["nightly, h1 in maintenance"] = time.monotonic() - began
        tis = edge_stack.task_instances(NIGHTLY_DAG, run_id)
        assert state == "failed", {k: v["state"] for k, v in tis.items()}
        rewarm = tis[("h2.rewarm", -1)]
        assert (rewarm["state"], rewarm["hostname"], rewarm["queue"], rewarm["executor"]) == (
            "success",
            "h2",
            "h2",
            "EdgeExecutor",
        )
        assert tis[("h1.rewarm", -1)]["state"] == "failed" and not tis[("h1.rewarm", -1)]["hostname"]
        report = json.loads((edge_stack.home / "ovcache-reports" / "latest-by-queue.json").read_text())
        assert set(report["unreachable"]) == {"h1"}, report["unreachable"]
        assert report["unreachable"]["h1"].startswith("not reached: no edge worker took the host's rewarm task from queue h1")
        h2_cells = [c for c in report["cells"] if c["host"] == "h2"]
        assert h2_cells and {c["outcome"] for c in h2_cells} == {"ok"}, h2_cells

        edge_stack.request("DELETE", path)
        edge_stack.wait_for("h1 to leave maintenance", lambda: edge_stack.edge_workers()["h1"]["state"] == "idle", timeout=60)
