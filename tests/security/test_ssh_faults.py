"""SSH connections dropped in the middle of an agent command: a clear failure, never a half-applied invalidation.

The hook reaches a real ``sshd`` on 127.0.0.1 through a small TCP relay that the
test can cut at any moment, as a network or a rebooting bastion would. Each trial
starts an invalidation over SSH, cuts the connection after a seeded delay, and
checks that the hook either finished or failed with an error naming the host;
that the agent on the host (which runs on: its client is gone, not its work)
left the cache whole; and that a retry finishes the job.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.hooks.errors import SSHConnectError
from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.conftest import blobs_in, ovcache, require
from tests.infra.sshd import SshServer, find_sshd
from tests.provider.conftest import AGENT_OVER_SSH

TRIALS = int(os.environ.get("OVCACHE_SSH_DROP_TRIALS", "6"))


class Relay:
    """A TCP relay to ``target``; :meth:`cut` drops every connection through it at once."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
            self.sockets.clear()

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    require(find_sshd() is not None, "sshd is not installed (apt-get install -y openssh-server)")
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def _wait_for_agents(cache: Path, timeout: float = 60) -> None:
    """Until no agent works on ``cache`` any more (the one the cut left running finishes on its own)."""
    deadline = time.monotonic() + timeout
    marker = str(cache).encode()
    while time.monotonic() < deadline:
        busy = False
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    cmd = Path(f"/proc/{name}/cmdline").read_bytes()
                except OSError:
                    continue
                if b"airflow_ovcache.cli.main" in cmd and marker in cmd:
                    busy = True
                    break
        if not busy:
            return
        time.sleep(0.05)
    raise AssertionError("the agent on the host never finished")


@pytest.mark.slow
def test_a_dropped_session_never_half_applies_an_invalidation(
    airflow_db: Path,
    sshd: SshServer,
    ovcache_conn: Any,
    repo: Path,
    add_version: Any,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_version(repo, "mlp", 3)
    relay = Relay((sshd.address, sshd.port))
    conn = sshd.airflow_connection()
    conn["port"] = relay.port
    # the relay is a different port: pin the same host key under its address
    conn["extra"]["host_key"] = sshd.host_key_line
    monkeypatch.setenv("AIRFLOW_CONN_OVC_DROP_SSH", json.dumps(conn))
    ovcache_conn(
        "ovc_drop",
        host="edge-drop",
        transport="ssh",
        ssh_conn_id="ovc_drop_ssh",
        cache_dir=cache_dir,
        repository=repo,
        agent_command=AGENT_OVER_SSH,
        connect_retries=1,
        retry_backoff=0.05,
        connect_timeout=3,
    )
    rng = random.Random(7)
    outcomes = {"finished": 0, "failed clearly": 0}
    try:
        for trial in range(TRIALS):
            warm = ovcache(
                "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--versions", "all"
            )
            assert warm.returncode == 0, warm.stderr
            kept = {
                e.blob: e.checksum
                for e in Manifest.load(cache_dir / ".ovcache" / "manifest.json").select("mlp")
                if e.version >= 2
            }
            hook = OvcacheHook("ovc_drop")
            errors: list[BaseException] = []

            def run(hook: OvcacheHook = hook, errors: list[BaseException] = errors) -> None:
                try:
                    hook.invalidate(versions="latest:2")
                except BaseException as exc:  # noqa: BLE001 - inspected below
                    errors.append(exc)

            worker = threading.Thread(target=run)
            worker.start()
            time.sleep(rng.uniform(0.05, 0.6))
            relay.cut()
            worker.join(60)
            assert not worker.is_alive(), f"trial {trial}: the hook hung after the cut"
            if errors:
                err = errors[0]
                assert isinstance(err, SSHConnectError), f"trial {trial}: {type(err).__name__}: {err}"
                assert str(err).startswith("host edge-drop") and "rerun" in err.hint
                outcomes["failed clearly"] += 1
            else:
                outcomes["finished"] += 1
            _wait_for_agents(cache_dir)
            manifest = Manifest.load(cache_dir / ".ovcache" / "manifest.json")
            # whole: either version 1 is still fully there, or it is fully gone (journal cleared)
            versions = sorted(e.version for e in manifest.select("mlp"))
            assert versions in ([1, 2, 3], [2, 3]), versions
            assert manifest.pending == [], f"trial {trial}: an invalidation was left half-applied"
            on_disk = {p.name for p in blobs_in(cache_dir)}
            assert on_disk == {e.blob for e in manifest.entries.values()}
            for blob in kept:
                assert blob in on_disk
            # a retry finishes the job
            again = OvcacheHook("ovc_drop").invalidate(versions="latest:2")
            assert again.host == "edge-drop"
            assert sorted(e.version for e in Manifest.load(cache_dir / ".ovcache" / "manifest.json").select("mlp")) == [2, 3]
    finally:
        relay.close()
    assert outcomes["failed clearly"] >= 1, outcomes
    print(f"ssh drops: {outcomes}")
