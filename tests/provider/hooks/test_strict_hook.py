"""The hook's side of issue 10: strict connection extras, numbers checked before the agent runs,
usage errors reported as usage errors, and a malformed extra reported as malformed JSON."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.config import HostConfig
from airflow_ovcache.hooks.envelope import AgentRun
from airflow_ovcache.hooks.errors import AgentTooOld, AgentUsageError, ConnectionConfigError
from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.protocol.location import Location

AGENT = f"{shlex.quote(sys.executable)} -m airflow_ovcache.cli.main"


def _conn(extra: Any) -> Any:
    from airflow.sdk import Connection

    return Connection(conn_id="infer_07", conn_type="ovcache", host="infer-07", extra=extra)


def test_malformed_extra_is_reported_as_json(airflow_db: Path) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        HostConfig.from_connection(_conn('{"cache_dir": "/var/cache/ov",'))
    text = str(info.value)
    assert "connection infer_07: the extra is not valid JSON" in text and "no cache_dir" not in text
    with pytest.raises(ConnectionConfigError, match="not an object"):
        HostConfig.from_connection(_conn("[1, 2]"))


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"command_timeout": "nan"}, "command_timeout"),
        ({"connect_timeout": "inf"}, "connect_timeout"),
        ({"connect_retries": 2.5}, "connect_retries"),
        ({"connect_retries": True}, "connect_retries"),
        ({"remote_timeout": "maybe"}, "remote_timeout"),
        ({"devices": {"CPU": 1}}, "devices"),
        ({"cache_dir": ["/a"]}, "cache_dir"),
        ({"agent_command": [1, 2]}, "agent_command"),
    ],
)
def test_extras_are_read_strictly(airflow_db: Path, extra: dict[str, Any], field: str) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        HostConfig.from_connection(_conn(json.dumps(extra)))
    assert f"field {field}" in str(info.value) or field in str(info.value)
    assert "infer_07" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"max_bytes": "inf"}, "max_bytes"),
        ({"max_bytes": "20X"}, "max_bytes"),
        ({"orphan_min_age": float("nan")}, "orphan_min_age"),
        ({"orphan_min_age": -1}, "orphan_min_age"),
    ],
)
def test_hook_checks_numbers_before_running_the_agent(
    airflow_db: Path, ovcache_conn, cache_dir: Path, kwargs: dict[str, Any], needle: str
) -> None:  # type: ignore[no-untyped-def]
    ovcache_conn("ovc_strict", host="infer-07", cache_dir=cache_dir)
    with pytest.raises(ConnectionConfigError) as info:
        OvcacheHook("ovc_strict").invalidate(**kwargs)
    assert f"argument {needle}" in str(info.value) and "host infer-07" in str(info.value)
    with pytest.raises(ConnectionConfigError, match="argument timeout"):
        OvcacheHook("ovc_strict").status(timeout=float("inf"))


def test_agent_usage_error_comes_back_as_usage(airflow_db: Path, ovcache_conn, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cache_dir.mkdir()
    ovcache_conn("ovc_usage", host="infer-07", cache_dir=cache_dir, agent_command=AGENT)
    hook = OvcacheHook("ovc_usage")
    with pytest.raises(AgentUsageError) as info:
        hook.run_agent("invalidate", ["--cache-dir", str(cache_dir), "--max-bytes", "20X"])
    assert info.value.code == "usage" and "--max-bytes" in str(info.value) and "20X" in str(info.value)
    assert not isinstance(info.value, AgentTooOld)
    with pytest.raises(AgentTooOld, match="unrecognized arguments"):
        hook.run_agent("invalidate", ["--cache-dir", str(cache_dir), "--from-the-future"])
    with pytest.raises(AgentTooOld, match="invalid choice"):
        hook.run_agent("teleport")


def test_old_agent_usage_text_is_read_the_same_way() -> None:
    """An agent from before usage envelopes prints argparse's text only: a bad value is still a usage error."""
    target = Location("infer-07")
    bad_value = ["usage: ovcache invalidate [-h] ...", "ovcache invalidate: error: argument --max-bytes: '20X' is not a size"]
    with pytest.raises(AgentUsageError, match="'20X' is not a size"):
        AgentRun.parse("", 2, target, bad_value)
    unknown = ["usage: ovcache [-h] ...", "ovcache: error: unrecognized arguments: --from-the-future"]
    with pytest.raises(AgentTooOld):
        AgentRun.parse("", 2, target, unknown)
