"""Reading an ovcache connection, and reading the agent's envelope."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.config import HostConfig
from airflow_ovcache.hooks.envelope import AgentRun
from airflow_ovcache.hooks.errors import AgentOutputError, AgentTooOld, ConnectionConfigError
from airflow_ovcache.hooks.reports import InvalidateReport, WarmReport
from airflow_ovcache.protocol.location import Location
from tests.conftest import ovcache


def _conn(extra: dict[str, Any], host: str | None = "infer-01") -> Any:
    from airflow.sdk import Connection

    return Connection(conn_id="c", conn_type="ovcache", host=host, extra=json.dumps(extra))


def test_defaults_and_overrides(airflow_db: Path) -> None:
    cfg = HostConfig.from_connection(_conn({"cache_dir": "/var/cache/ov"}))
    assert cfg.transport == "local" and cfg.host_name == "infer-01"
    assert cfg.agent_command == (sys.executable, "-m", "airflow_ovcache.cli.main")
    assert cfg.command_timeout == 3600 and cfg.connect_retries == 3 and cfg.devices == ()
    over = cfg.with_overrides(devices="GPU,CPU", agent_command="/opt/ov/bin/ovcache --quiet", cache_dir=None)
    assert (
        over.devices == ("GPU", "CPU")
        and over.agent_command == ("/opt/ov/bin/ovcache", "--quiet")
        and over.cache_dir == "/var/cache/ov"
    )

    ssh = HostConfig.from_connection(
        _conn(
            {"transport": "SSH", "ssh_conn_id": "s", "command_timeout": "0", "connect_retries": "5", "remote_timeout": "false"},
            None,
        )
    )
    assert ssh.transport == "ssh" and ssh.agent_command == ("ovcache",) and ssh.command_timeout is None
    assert ssh.connect_retries == 5 and ssh.remote_timeout is False and ssh.label("10.0.0.7") == "10.0.0.7"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"transport": "telnet"}, "not one of local, ssh"),
        ({"transport": "ssh"}, "names no ssh_conn_id"),
        ({"command_timeout": "soon"}, "is not a number"),
        ({"connect_retries": "-1"}, "must be at least 0"),
        ({"agent_command": "ovcache 'unbalanced"}, "cannot be split"),
    ],
)
def test_bad_connections_are_explained(airflow_db: Path, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectionConfigError, match=message) as err:
        HostConfig.from_connection(_conn(extra))
    assert str(err.value).startswith("host infer-01: connection")


@pytest.fixture(scope="module")
def envelope(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real envelope from the real agent."""
    run = ovcache("models", "--json", "--repository", str(tmp_path_factory.mktemp("empty-repo")))
    assert run.returncode == 0
    return run.stdout


def test_envelope_is_read_and_checked(envelope: str) -> None:
    target = Location("infer-01")
    run = AgentRun.parse(envelope, 0, target)
    assert run.command == "models" and run.schema_version == 2 and run.ok and run.error is None
    # a login banner before the output does not matter
    assert AgentRun.parse("Welcome to infer-01!\n" + envelope, 0, target).command == "models"
    # an agent from before evidence (schema 1) is still read
    older = json.loads(envelope) | {"schema_version": 1}
    assert AgentRun.parse(json.dumps(older), 0, target).schema_version == 1

    newer = json.loads(envelope) | {"schema_version": 3}
    with pytest.raises(AgentTooOld, match="speaks envelope schema 3.*upgrade the provider"):
        AgentRun.parse(json.dumps(newer), 0, target)
    foreign = json.loads(envelope) | {"schema": "someone-else/agent"}
    with pytest.raises(AgentTooOld, match="someone-else/agent"):
        AgentRun.parse(json.dumps(foreign), 0, target)
    with pytest.raises(AgentOutputError, match="exited with code 2 without a JSON envelope.*Traceback"):
        AgentRun.parse(envelope[: len(envelope) // 2], 2, target, ["Traceback (most recent call last):"])


def test_reports_are_compact() -> None:
    warm = WarmReport.from_run(
        AgentRun(
            "warm",
            "h",
            False,
            2,
            "0.1.0",
            1,
            1.5,
            {
                "cache_dir": "/c",
                "repository": "/r",
                "summary": {"warmed": 1, "failed": 1},
                "items": [
                    {
                        "model": "m",
                        "version": 1,
                        "device": "CPU",
                        "status": "warmed",
                        "blob": "1.blob",
                        "size": 10,
                        "compile_seconds": 0.1,
                        "spec": "x",
                    },
                    {
                        "model": "m",
                        "version": 1,
                        "device": "GPU",
                        "status": "failed",
                        "reason": "no GPU",
                        "error": {"code": "unknown-device", "message": "no GPU"},
                    },
                ],
            },
        )
    )
    assert [i.describe() for i in warm.failed] == ["model m, version 1, device GPU"]
    xcom = warm.to_xcom()
    assert xcom["items"][0] == {
        "model": "m",
        "version": 1,
        "device": "CPU",
        "status": "warmed",
        "blob": "1.blob",
        "size": 10,
        "compile_seconds": 0.1,
    }
    assert xcom["items"][1]["reason"] == "no GPU"
    json.dumps(xcom)

    inv = InvalidateReport.from_run(
        AgentRun(
            "invalidate",
            "h",
            True,
            0,
            "0.1.0",
            1,
            0.2,
            {"cache_dir": "/c", "dry_run": True, "plan": {"removals": []}, "applied": None},
        )
    )
    assert inv.to_xcom()["removed"] == 0 and inv.budget_met
