"""The key kept in Airflow reaches the agent on stdin, and nowhere else.

A real DAG run (``dag.test()`` on SQLite) warms, load-checks and invalidates an
encrypted cache with the key in a connection's password; meanwhile a watcher
reads ``/proc/<pid>/cmdline`` and ``/proc/<pid>/environ`` of every agent
process (and its load-check children). Afterwards the task logs, every XCom,
the manifest and everything the agent keeps in the cache directory are searched
for the key in hex, upper-case hex and base64. The same over SSH, with the key
going down the session's stdin.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.encryption import key_id
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.hooks.errors import ConnectionConfigError
from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.conftest import blobs_in
from tests.infra.sshd import SshServer, find_sshd
from tests.provider.conftest import AGENT_OVER_SSH, DAGS_FOLDER, load_dag, run_dag

AGENT_MARKERS = (b"airflow_ovcache.cli.main", b"airflow_ovcache.core.loadcheck")


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``ancestor`` is on ``pid``'s parent chain: agents of other test runs on the machine are not ours."""
    for _ in range(64):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state: the parent's pid
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


class ProcWatcher:
    """Polls /proc for this test's agent processes (its descendants) and keeps their command lines and environments."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[bytes, bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) == me or int(name) in self.seen:
                    continue
                try:
                    cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
                    if any(m in cmdline for m in AGENT_MARKERS) and _descends_from(int(name), me):
                        self.seen[int(name)] = (cmdline, Path(f"/proc/{name}/environ").read_bytes())
                except OSError:
                    continue
            time.sleep(0.005)

    def __enter__(self) -> ProcWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _forms(key: bytes) -> list[bytes]:
    return [key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key), key]


def _assert_nowhere(key: bytes, where: str, data: bytes) -> None:
    for form in _forms(key):
        assert form not in data, f"the key ({form[:6]!r}...) leaked into {where}"


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> bytes:
    key = os.urandom(32)
    monkeypatch.setenv("AIRFLOW_CONN_OVC_CACHE_KEY", json.dumps({"conn_type": "generic", "password": key.hex()}))
    return key


@pytest.fixture
def secret_dag(airflow_db: Path) -> Iterator[object]:
    target = DAGS_FOLDER / "ovc_secret_key.py"
    shutil.copy2(Path(__file__).parent / "dags" / "ovc_secret_key.py", target)
    yield load_dag("ovc_secret_key")


def test_a_key_from_a_connection_reaches_only_the_agents_stdin(
    secret_dag: object, secret_key: bytes, ovcache_conn: Any, repo: Path, cache_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    ovcache_conn("ovc_secret_host", host="vault-01", cache_dir=cache_dir, repository=repo, encryption_key_conn_id="ovc_cache_key")
    with ProcWatcher() as watcher:
        result = run_dag(secret_dag)
    logged = capfd.readouterr()
    assert result.state == "success", [(t.task_id, t.state) for t in result.tasks]
    warm = result.task("warm").xcom
    assert warm["summary"]["warmed"] == 2 and all(i["loaded_from_cache"] for i in warm["items"])
    assert result.task("verify").xcom["ok"] is True
    invalidated = result.task("invalidate").xcom
    assert invalidated["removed"] == 1 and [r["version"] for r in invalidated["removals"]] == [1]

    # every agent process, and the load-check children, ran without the key in argv or environ
    assert len(watcher.seen) >= 4, watcher.seen.keys()
    assert any(b"--encryption-key-stdin" in cmd for cmd, _ in watcher.seen.values())
    for pid, (cmdline, environ) in watcher.seen.items():
        _assert_nowhere(secret_key, f"/proc/{pid}/cmdline", cmdline)
        _assert_nowhere(secret_key, f"/proc/{pid}/environ", environ)  # Airflow's secrets are not passed on
        assert b"AIRFLOW_CONN_" not in environ and b"AIRFLOW__" not in environ
    # nor in the task logs, the XComs, the manifest, or anything the agent keeps
    _assert_nowhere(secret_key, "the task logs", (logged.out + logged.err).encode())
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    for path in logs.rglob("*") if logs.exists() else []:
        if path.is_file():
            _assert_nowhere(secret_key, str(path), path.read_bytes())
    _assert_nowhere(secret_key, "the XComs", json.dumps([t.xcom for t in result.tasks], default=str).encode())
    for path in (cache_dir / ".ovcache").rglob("*"):
        if path.is_file():
            _assert_nowhere(secret_key, str(path), path.read_bytes())
    (entry,) = Manifest.load(cache_dir / ".ovcache" / "manifest.json").select()
    assert entry.spec["encryption_key_file"] == "-" and entry.key_id == key_id(secret_key)


def test_a_bad_key_connection_fails_without_showing_it(
    airflow_db: Path, ovcache_conn: Any, repo: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OVC_BAD_KEY", json.dumps({"conn_type": "generic", "password": "hunter2-is-no-key"}))
    ovcache_conn("ovc_bad_host", cache_dir=cache_dir, repository=repo, encryption_key_conn_id="ovc_bad_key")
    with pytest.raises(ConnectionConfigError) as err:
        OvcacheHook("ovc_bad_host").warm(models=["mlp"])
    assert "hunter2" not in str(err.value) and "not an AES-256 key" in str(err.value)
    ovcache_conn("ovc_nokey_host", cache_dir=cache_dir, repository=repo, encryption_key_conn_id="ovc_missing_key")
    with pytest.raises(ConnectionConfigError) as err:
        OvcacheHook("ovc_nokey_host").verify()
    assert "ovc_missing_key" in str(err.value)
    assert blobs_in(cache_dir) == [] if cache_dir.exists() else True


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    from tests.conftest import require

    require(find_sshd() is not None, "sshd is not installed (apt-get install -y openssh-server)")
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def test_over_ssh_the_key_goes_down_the_sessions_stdin(
    airflow_db: Path,
    sshd: SshServer,
    secret_key: bytes,
    ovcache_conn: Any,
    repo: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_OVC_KEY_SSH", json.dumps(sshd.airflow_connection()))
    ovcache_conn(
        "ovc_key_remote",
        host="edge-09",
        transport="ssh",
        ssh_conn_id="ovc_key_ssh",
        cache_dir=cache_dir,
        repository=repo,
        agent_command=AGENT_OVER_SSH,
        encryption_key_conn_id="ovc_cache_key",
    )
    hook = OvcacheHook("ovc_key_remote")
    with ProcWatcher() as watcher:
        warm = hook.warm(models=["mlp"], confirm=True)
        verify = hook.verify(load_check=True)
    assert [(i.status, i.loaded_from_cache) for i in warm.items] == [("warmed", True)]
    assert verify.problems == []
    assert watcher.seen
    for pid, (cmdline, environ) in watcher.seen.items():
        _assert_nowhere(secret_key, f"/proc/{pid}/cmdline", cmdline)
        _assert_nowhere(secret_key, f"/proc/{pid}/environ", environ)
    (entry,) = Manifest.load(cache_dir / ".ovcache" / "manifest.json").select()
    assert entry.key_id == key_id(secret_key)
