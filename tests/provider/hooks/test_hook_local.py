"""The hook over the local transport: the real agent in a child process, and every way that can fail.

Failures that cannot be provoked with the real agent on demand (an old agent,
a crash at a chosen moment, a run that hangs) use small real programs as the
agent command: a shell script that prints an old envelope, the real agent
killed by a real SIGSEGV while it starts, and a script that sleeps with a
grandchild. Nothing is patched in-process.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_ovcache.hooks.errors import (
    AgentCommandError,
    AgentCrashed,
    AgentNotInstalled,
    AgentTimeout,
    AgentTooOld,
    ConnectionConfigError,
)
from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.samples import swap_weights_in_place
from tests.conftest import blobs_in

AGENT = f"{shlex.quote(sys.executable)} -m airflow_ovcache.cli.main"


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_commands_return_typed_results(airflow_db: Path, ovcache_conn, repo: Path, cache_dir: Path) -> None:
    ovcache_conn("ovc_local", host="infer-01", cache_dir=cache_dir, repository=repo, devices="CPU")
    hook = OvcacheHook("ovc_local")

    warm = hook.warm(models=["mlp"], versions="all")
    assert warm.host == "infer-01" and warm.cache_dir == str(cache_dir)
    assert [(i.model, i.version, i.device, i.status) for i in warm.items] == [
        ("mlp", 1, "CPU", "warmed"),
        ("mlp", 2, "CPU", "warmed"),
    ]
    assert warm.summary == {"warmed": 2, "unchanged": 0, "skipped": 0, "failed": 0}
    assert len(blobs_in(cache_dir)) == 2
    again = hook.warm(models=["mlp"], version_numbers=[2])
    assert [i.status for i in again.items] == ["unchanged"]

    report = hook.verify(model="mlp")
    assert [(e.version, e.status) for e in report.entries] == [(1, "ok"), (2, "ok")] and not report.problems
    swap_weights_in_place(repo / "mlp" / "1" / "model.bin", seed=9)
    stale = hook.verify(model="mlp")
    assert [(e.version, e.status) for e in stale.problems] == [(1, "stale-model")]
    assert stale.to_xcom()["repairable"] == [{"model": "mlp", "version": 1, "device": "CPU"}]

    plan = hook.invalidate(versions="latest:1", dry_run=True)
    assert plan.dry_run and {(r.model, r.version) for r in plan.removals} == {("mlp", 1)}
    assert len(blobs_in(cache_dir)) == 2
    done = hook.invalidate(versions="latest:1")
    assert [(r.model, r.version) for r in done.removed] == [("mlp", 1)] and done.bytes_freed > 0
    assert len(blobs_in(cache_dir)) == 1

    devices = hook.devices(["CPU"])
    cpu = devices.find("CPU")
    assert cpu is not None and cpu.can_cache and "EXPORT_IMPORT" in cpu.capabilities
    models = hook.models()
    mlp = models.find("mlp")
    assert mlp is not None and mlp.versions == (1, 2) and mlp.latest == 2
    version = hook.agent_version()
    assert version.schema_version == 2 and version.openvino
    ok, message = hook.test_connection()
    assert ok and "infer-01" in message and "schema 2" in message


def test_agent_error_names_host_model_version_device(airflow_db: Path, ovcache_conn, repo: Path, cache_dir: Path) -> None:
    ovcache_conn("ovc_local", host="infer-02", cache_dir=cache_dir, repository=repo)
    with pytest.raises(AgentCommandError) as err:
        OvcacheHook("ovc_local").warm(models=["nosuchmodel"])
    assert err.value.code == "model-not-found"
    text = str(err.value)
    assert text.startswith("host infer-02, model nosuchmodel, version latest:1, device CPU: ")
    assert "not in repository" in text


def test_missing_agent_says_how_to_install(airflow_db: Path, ovcache_conn, repo: Path, cache_dir: Path) -> None:
    ovcache_conn("ovc_local", host="infer-03", cache_dir=cache_dir, repository=repo, agent_command="/opt/nowhere/bin/ovcache")
    with pytest.raises(AgentNotInstalled) as err:
        OvcacheHook("ovc_local").verify(model="mlp", version=1, device="CPU")
    text = str(err.value)
    assert text.startswith("host infer-03, model mlp, version 1, device CPU: ")
    assert "/opt/nowhere/bin/ovcache" in text and "pip install airflow-ovcache" in text


def test_old_agent_is_refused(airflow_db: Path, ovcache_conn, tmp_path: Path, cache_dir: Path) -> None:
    # An agent from before the envelope was versioned the way we read it.
    old = _script(
        tmp_path / "old-ovcache",
        'echo \'{"schema": "airflow-ovcache/agent", "schema_version": 0, "agent_version": "0.0.1", "result": {}}\'\n',
    )
    ovcache_conn("ovc_old", host="infer-04", cache_dir=cache_dir, agent_command=old)
    with pytest.raises(AgentTooOld) as err:
        OvcacheHook("ovc_old").verify()
    assert "schema 0" in str(err.value) and "pip install airflow-ovcache" in str(err.value)

    # An agent that does not know a flag we pass answers with argparse's usage error.
    usage = _script(
        tmp_path / "usage-ovcache",
        'echo "usage: ovcache [-h]" >&2; echo "ovcache: error: unrecognized arguments: --json" >&2; exit 2\n',
    )
    ovcache_conn("ovc_old", host="infer-04", cache_dir=cache_dir, agent_command=usage)
    with pytest.raises(AgentTooOld, match="older than this provider"):
        OvcacheHook("ovc_old").verify()


def test_crash_fails_the_call_not_the_worker(airflow_db: Path, ovcache_conn, repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    # The real agent, killed by a real SIGSEGV while it starts: what an OpenVINO crash looks like from outside.
    crasher = _script(tmp_path / "crashing-ovcache", f'(sleep 0.05; kill -SEGV $$) &\nexec {AGENT} "$@"\n')
    ovcache_conn("ovc_crash", host="infer-05", cache_dir=cache_dir, repository=repo, agent_command=crasher)
    with pytest.raises(AgentCrashed) as err:
        OvcacheHook("ovc_crash").warm(models=["mlp"], version_numbers=[2], devices=["CPU"])
    text = str(err.value)
    assert text.startswith("host infer-05, model mlp, version 2, device CPU: ")
    assert "SIGSEGV" in text
    assert os.getpid() > 0  # this process, standing in for the worker, is still here


def test_timeout_stops_the_whole_process_group(airflow_db: Path, ovcache_conn, cache_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    slow = _script(tmp_path / "slow-ovcache", f'sleep 60 &\necho $! > {pid_file}\necho "compiling..." >&2\nwait\n')
    ovcache_conn("ovc_slow", host="infer-06", cache_dir=cache_dir, agent_command=slow, command_timeout=1)
    started = time.monotonic()
    with pytest.raises(AgentTimeout) as err:
        OvcacheHook("ovc_slow").verify(model="mlp", version=1)
    assert time.monotonic() - started < 10
    assert str(err.value).startswith("host infer-06, model mlp, version 1: ")
    assert "within 1s" in str(err.value) and "compiling..." in str(err.value)
    assert _wait_dead(int(pid_file.read_text())), "the agent's child outlived the timeout"


def test_kill_stops_a_running_agent(airflow_db: Path, ovcache_conn, cache_dir: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    slow = _script(tmp_path / "slow-ovcache", f"sleep 60 &\necho $! > {pid_file}\nwait\n")
    ovcache_conn("ovc_slow", host="infer-07", cache_dir=cache_dir, agent_command=slow)
    hook = OvcacheHook("ovc_slow")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            hook.verify()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    hook.kill()  # what on_kill does
    worker.join(15)
    assert not worker.is_alive()
    assert outcome and isinstance(outcome[0], AgentCrashed) and "SIGTERM" in str(outcome[0])
    assert _wait_dead(int(pid_file.read_text()))


def test_async_run_and_cancellation(airflow_db: Path, ovcache_conn, repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    ovcache_conn("ovc_local", host="infer-08", cache_dir=cache_dir, repository=repo)
    report = asyncio.run(OvcacheHook("ovc_local").amodels())
    assert report.find("tiny") is not None and report.host == "infer-08"

    pid_file = tmp_path / "grandchild.pid"
    slow = _script(tmp_path / "slow-ovcache", f"sleep 60 &\necho $! > {pid_file}\nwait\n")
    ovcache_conn("ovc_slow", host="infer-08", cache_dir=cache_dir, agent_command=slow)

    async def cancelled() -> None:
        task = asyncio.ensure_future(OvcacheHook("ovc_slow").averify())
        while not pid_file.exists():
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(cancelled(), 20))
    assert _wait_dead(int(pid_file.read_text())), "cancelling the trigger left the agent's children running"


def test_connection_problems_are_config_errors(airflow_db: Path, ovcache_conn) -> None:
    with pytest.raises(ConnectionConfigError, match="cannot be read"):
        _ = OvcacheHook("ovc_does_not_exist").config
    ovcache_conn("ovc_bad", transport="carrier-pigeon")
    with pytest.raises(ConnectionConfigError, match="carrier-pigeon"):
        _ = OvcacheHook("ovc_bad").config
    ovcache_conn("ovc_ssh_without_conn", host="h", transport="ssh")
    with pytest.raises(ConnectionConfigError, match="ssh_conn_id"):
        _ = OvcacheHook("ovc_ssh_without_conn").config
    ovcache_conn("ovc_no_cache", host="h")
    with pytest.raises(ConnectionConfigError, match="no cache_dir given"):
        OvcacheHook("ovc_no_cache").verify()


def test_signal_names_are_reported() -> None:
    from airflow_ovcache.hooks.transport import signal_name

    assert signal_name(signal.SIGBUS) == "SIGBUS"
    assert signal_name(200) == "signal 200"
