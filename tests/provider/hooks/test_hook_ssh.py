"""The hook over SSH against a real sshd on 127.0.0.1: success, and each way reaching a host fails."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from airflow_ovcache.hooks.errors import (
    AgentNotInstalled,
    AgentTimeout,
    HostKeyMismatch,
    HostKeyNotPinned,
    SSHConnectError,
    SSHLoginRefused,
)
from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.conftest import blobs_in
from tests.infra.sshd import SshServer, free_port, generate_key_pair
from tests.provider.conftest import AGENT_OVER_SSH


@pytest.fixture
def ssh_host(monkeypatch: pytest.MonkeyPatch, ovcache_conn, sshd: SshServer, repo: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    """``ovc_ssh`` reaches the test sshd through SSH connection ``ovc_ssh_login``; tweak either per test."""

    def define(
        agent_command: str = AGENT_OVER_SSH,
        ssh_extra: dict[str, object] | None = None,
        conn_extra: dict[str, object] | None = None,
        **ssh_fields: object,
    ) -> OvcacheHook:
        conn = sshd.airflow_connection(**(ssh_extra or {}))
        conn.update(ssh_fields)
        monkeypatch.setenv("AIRFLOW_CONN_OVC_SSH_LOGIN", json.dumps(conn))
        ovcache_conn(
            "ovc_ssh",
            host="edge-01",
            transport="ssh",
            ssh_conn_id="ovc_ssh_login",
            cache_dir=cache_dir,
            repository=repo,
            agent_command=agent_command,
            connect_retries=2,
            retry_backoff=0.05,
            connect_timeout=3,
            **(conn_extra or {}),
        )
        return OvcacheHook("ovc_ssh")

    return define


def test_warm_and_verify_over_ssh(airflow_db: Path, ssh_host, cache_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    hook = ssh_host()
    warm = hook.warm(models=["mlp"], versions="all")
    logged = capfd.readouterr()
    assert warm.host == "edge-01"
    assert [(i.version, i.status) for i in warm.items] == [(1, "warmed"), (2, "warmed")]
    assert len(blobs_in(cache_dir)) == 2
    # the agent's progress lines reached the log as it ran
    assert "[edge-01] [2/2] mlp@2 CPU: warmed" in logged.out + logged.err
    assert hook.verify(model="mlp").problems == []
    assert hook.get_conn().attempts == 1  # type: ignore[attr-defined]


def test_wrong_host_key_is_refused_without_retry(airflow_db: Path, ssh_host, tmp_path: Path) -> None:
    _, other = generate_key_pair(tmp_path / "impostor", "ed25519")
    hook = ssh_host(ssh_extra={"host_key": " ".join(other.split()[:2])})
    with pytest.raises(HostKeyMismatch) as err:
        hook.verify(model="mlp")
    text = str(err.value)
    assert text.startswith("host edge-01, model mlp: ") and "presented host key ssh-ed25519 SHA256:" in text
    assert hook.get_conn().attempts == 1  # type: ignore[attr-defined]


def test_unpinned_host_is_refused_with_how_to_pin(
    airflow_db: Path, ssh_host, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ssh/known_hosts that could vouch for it
    hook = ssh_host(ssh_extra={"host_key": None})
    with pytest.raises(HostKeyNotPinned) as err:
        hook.devices()
    assert "not pinned" in str(err.value) and "ssh-keyscan -p" in str(err.value) and '"host_key"' in str(err.value)


def test_explicit_opt_out_of_host_key_checking(
    airflow_db: Path, ssh_host, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    hook = ssh_host(ssh_extra={"host_key": None, "no_host_key_check": "true"})
    assert hook.models().find("mlp") is not None


def test_refused_login(airflow_db: Path, ssh_host, tmp_path: Path) -> None:
    stranger, _ = generate_key_pair(tmp_path / "stranger", "ed25519")
    hook = ssh_host(ssh_extra={"key_file": str(stranger)})
    with pytest.raises(SSHLoginRefused) as err:
        hook.verify()
    assert str(err.value).startswith("host edge-01: ") and "refused the login of user" in str(err.value)
    assert hook.get_conn().attempts == 1  # type: ignore[attr-defined]


def test_unreachable_host_is_retried_then_fails(airflow_db: Path, ssh_host) -> None:
    hook = ssh_host(port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(SSHConnectError) as err:
        hook.warm(models=["mlp"], version_numbers=[1], devices=["CPU"])
    assert hook.get_conn().attempts == 3  # type: ignore[attr-defined]
    assert time.monotonic() - started < 10
    text = str(err.value)
    assert text.startswith("host edge-01, model mlp, version 1, device CPU: cannot connect to 127.0.0.1:")
    assert "after 3 attempt(s)" in text


def test_missing_agent_on_the_host(airflow_db: Path, ssh_host) -> None:
    hook = ssh_host(agent_command="/opt/ovcache/bin/ovcache")
    with pytest.raises(AgentNotInstalled) as err:
        hook.verify(model="mlp", version=2, device="CPU")
    text = str(err.value)
    assert text.startswith("host edge-01, model mlp, version 2, device CPU: ")
    assert "/opt/ovcache/bin/ovcache" in text and "pip install airflow-ovcache" in text


def _slow_remote_agent(tmp_path: Path) -> tuple[str, Path]:
    pid_file = tmp_path / "remote.pid"
    script = tmp_path / "slow-agent"
    script.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nsleep 60 &\nwait\n")
    script.chmod(0o755)
    return str(script), pid_file


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return not Path(f"/proc/{pid}").exists()


def test_timeout_stops_the_remote_agent(airflow_db: Path, ssh_host, tmp_path: Path) -> None:
    script, pid_file = _slow_remote_agent(tmp_path)
    hook = ssh_host(agent_command=script, conn_extra={"command_timeout": 1})
    with pytest.raises(AgentTimeout, match="within 1s and was stopped on the host"):
        hook.verify()
    # stopped by the hook at once, not left for timeout(1) on the host (2 s later)
    assert _gone(int(pid_file.read_text()), 1.5), "the remote agent outlived the command timeout"


def test_kill_stops_the_remote_agent(airflow_db: Path, ssh_host, tmp_path: Path) -> None:
    script, pid_file = _slow_remote_agent(tmp_path)
    hook = ssh_host(agent_command=script, conn_extra={"command_timeout": 0})  # no time limit at all
    failures: list[BaseException] = []

    def run() -> None:
        try:
            hook.verify()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 15
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    hook.kill()  # what the operator's on_kill does
    worker.join(20)
    assert failures and isinstance(failures[0], AgentTimeout) and "stopped" in str(failures[0])
    assert _gone(int(pid_file.read_text()), 5), "killing the task left the remote agent running"
