"""Operators on a host reached over SSH, under dag.test(): the success path, and each failure as a clear task failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import blobs_in
from tests.infra.sshd import SshServer, free_port, generate_key_pair
from tests.provider.conftest import AGENT_OVER_SSH, failure_lines, load_dag, run_dag


@pytest.fixture
def ssh_dag_host(monkeypatch: pytest.MonkeyPatch, ovcache_conn, sshd: SshServer, repo: Path, cache_dir: Path):  # type: ignore[no-untyped-def]
    def define(agent_command: str = AGENT_OVER_SSH, **ssh: Any) -> None:
        conn = sshd.airflow_connection(**{k: v for k, v in ssh.items() if k != "port"})
        if "port" in ssh:
            conn["port"] = ssh["port"]
        monkeypatch.setenv("AIRFLOW_CONN_OVC_SSH_LOGIN", json.dumps(conn))
        ovcache_conn(
            "ovc_ssh_host",
            host="edge-02",
            transport="ssh",
            ssh_conn_id="ovc_ssh_login",
            cache_dir=cache_dir,
            repository=repo,
            agent_command=agent_command,
            connect_retries=1,
            retry_backoff=0.05,
        )

    return define


def test_warm_and_verify_over_ssh(airflow_db: Path, ssh_dag_host, cache_dir: Path) -> None:
    ssh_dag_host()
    result = run_dag(load_dag("ovc_ssh"))
    assert result.state == "success", [(t.task_id, t.state) for t in result.tasks]
    warm = result.task("warm").xcom
    assert warm["host"] == "edge-02" and [i["version"] for i in warm["items"]] == [1, 2]
    assert result.task("verify").xcom["summary"] == {"ok": 2}
    assert len(blobs_in(cache_dir)) == 2


def _pinned_elsewhere(tmp_path: Path) -> dict[str, Any]:
    _, public = generate_key_pair(tmp_path / "impostor")
    return {"host_key": " ".join(public.split()[:2])}


def _stranger(tmp_path: Path) -> dict[str, Any]:
    key, _ = generate_key_pair(tmp_path / "stranger")
    return {"key_file": str(key)}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong host key", "HostKeyMismatch: host edge-02, model mlp, version all, device CPU: 127.0.0.1:"),
        ("refused login", "SSHLoginRefused: host edge-02, model mlp, version all, device CPU: 127.0.0.1:"),
        ("unreachable host", "SSHConnectError: host edge-02, model mlp, version all, device CPU: cannot connect to 127.0.0.1:"),
        (
            "agent missing",
            "AgentNotInstalled: host edge-02, model mlp, version all, device CPU: the agent command '/usr/local/bin/ovcache-missing' was not found",
        ),
    ],
)
def test_ssh_failures_fail_the_task_clearly(
    airflow_db: Path, ssh_dag_host, tmp_path: Path, capfd: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    if case == "wrong host key":
        ssh_dag_host(**_pinned_elsewhere(tmp_path))
    elif case == "refused login":
        ssh_dag_host(**_stranger(tmp_path))
    elif case == "unreachable host":
        ssh_dag_host(port=free_port())
    else:
        ssh_dag_host(agent_command="/usr/local/bin/ovcache-missing")
    result = run_dag(load_dag("ovc_ssh"))
    out = capfd.readouterr()
    assert result.task("warm").state == "failed"
    assert result.task("verify").state == "upstream_failed"
    failures = failure_lines(out.out + out.err)
    assert failures and failures[0].startswith(expected), failures
