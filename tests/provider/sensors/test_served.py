"""The served sensor and its trigger: waiting, after a release, for the real server to read the warmed blob.

The "server" is a separate process compiling the model into the host's cache
directory, as a serving application starting up would. The agent's own
verify (which the condition runs) must not make the blob look served.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.conditions import ServedCondition
from airflow_ovcache.hooks.errors import EvidenceUnavailable
from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.hooks.reports import VerifyEntry, VerifyReport
from airflow_ovcache.sensors.served import OvcacheServedSensor
from airflow_ovcache.triggers.served import OvcacheServedTrigger
from tests.core.test_evidence import serve
from tests.provider.triggers.test_triggers import _first_event, _roundtrip


def _make_trigger(**overrides: Any) -> OvcacheServedTrigger:
    kwargs: dict[str, Any] = {"ovcache_conn_id": "ovc_host_a", "model": "mlp", "version": 2, "devices": ["CPU"]}
    return OvcacheServedTrigger(**(kwargs | overrides))


def _report(*entries: dict[str, Any]) -> VerifyReport:
    return VerifyReport("h1", "/c", [VerifyEntry.from_json(e) for e in entries], {}, 0.0)


def _row(state: str | None, status: str = "ok", **evidence: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"status": status, "reason": "r", "model": "mlp", "version": 2, "device": "CPU", "blob": "1.blob"}
    if state is not None:
        row["evidence"] = {"state": state, "reason": evidence.pop("reason", "why"), **evidence}
    return row


def test_serialize_round_trips() -> None:
    _roundtrip(_make_trigger(fail_when_unknown=False, timeout=30, poke_interval=2))


def test_condition_says_what_is_not_served_and_fails_when_it_cannot_tell() -> None:
    """Regression guard: unknown evidence must not leave a sensor waiting for ever."""
    cond = ServedCondition("mlp", 2, ["CPU"])
    waiting = cond.evaluate(_report(_row("not-served-yet", seconds=7200)))
    assert not waiting.met and "not served yet (2.0 h)" in waiting.message
    assert cond.evaluate(_report(_row("served", at="2026-01-01T00:00:00+00:00"))).met
    assert not cond.evaluate(_report(_row("served", status="stale-model"))).met  # a served stale blob is no success
    with pytest.raises(EvidenceUnavailable, match="noatime"):
        cond.evaluate(_report(_row("unknown", reason="mounted noatime")))
    assert not ServedCondition("mlp", 2, ["CPU"], fail_when_unknown=False).evaluate(_report(_row("unknown"))).met
    assert "CPU: not warmed" in cond.evaluate(_report()).message


def test_trigger_times_out_naming_what_is_not_served_then_fires_after_a_real_server_load(
    airflow_db: Path, local_hosts: dict[str, Path], repo: Path
) -> None:
    OvcacheHook("ovc_host_a").warm(models=["mlp"], version_numbers=[2])
    waited = asyncio.run(_first_event(_make_trigger(poke_interval=0.2, timeout=1)))
    assert waited["status"] == "timeout", waited
    assert "still not met after 1s" in waited["message"] and "CPU: not served yet" in waited["message"]

    assert serve(repo / "mlp" / "2" / "model.xml", local_hosts["host-a"])
    fired = asyncio.run(_first_event(_make_trigger(poke_interval=0.2, timeout=60)))
    assert fired["status"] == "success", fired
    assert fired["value"]["devices"] == {"CPU": "served"} and fired["value"]["served_at"]["CPU"]


def test_sensor_defers_to_its_trigger_and_pokes(airflow_db: Path, local_hosts: dict[str, Path], repo: Path) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    OvcacheHook("ovc_host_a").warm(models=["mlp"], version_numbers=[2])
    sensor = OvcacheServedSensor(
        task_id="served",
        ovcache_conn_id="ovc_host_a",
        model="mlp",
        version="2",
        devices="CPU",
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, OvcacheServedTrigger)
    assert trigger.serialize() == (
        "airflow_ovcache.triggers.served.OvcacheServedTrigger",
        {
            "ovcache_conn_id": "ovc_host_a",
            "poke_interval": 5.0,
            "timeout": 600.0,
            "cache_dir": None,
            "command_timeout": None,
            "host_name": None,
            "model": "mlp",
            "version": 2,
            "devices": ["CPU"],
            "fail_when_unknown": True,
        },
    )

    poke = OvcacheServedSensor(task_id="p", ovcache_conn_id="ovc_host_a", model="mlp", version=2, devices="CPU")
    assert poke.poke({}) is False  # type: ignore[arg-type]
    serve(repo / "mlp" / "2" / "model.xml", local_hosts["host-a"])
    done = poke.poke({})  # type: ignore[arg-type]
    assert done and done.xcom_value["devices"] == {"CPU": "served"}  # type: ignore[union-attr]


def test_xcom_and_the_nightly_report_carry_the_served_field(airflow_db: Path, local_hosts: dict[str, Path], repo: Path) -> None:
    from airflow_ovcache.fleet.report import build_report, render_html

    hook = OvcacheHook("ovc_host_a")
    hook.warm(models=["mlp"], version_numbers=[1, 2])
    serve(repo / "mlp" / "2" / "model.xml", local_hosts["host-a"])  # served as warmed
    serve(repo / "mlp" / "1" / "model.xml", local_hosts["host-a"], mode="model")  # a server compiling something else

    verify = hook.verify().to_xcom()
    served = {(e["model"], e["version"]): e.get("served") for e in verify["entries"]}
    assert served[("mlp", 2)]["state"] == "served" and served[("mlp", 2)]["at"]
    assert served[("mlp", 1)] == {"state": "not-served-yet", "seconds": served[("mlp", 1)]["seconds"]}
    (orphan,) = [e for e in verify["entries"] if e["status"] == "orphan"]
    assert orphan["server_compiled"] and orphan["shadows"].startswith("mlp/1/CPU/")

    nightly = hook.rewarm(load_check=True, confirm=False).to_xcom()
    report = build_report([{**nightly, "host": "host-a"}])
    cells = {c.version: c for c in report.cells}
    assert cells[2].served and cells[2].served["state"] == "served" and cells[2].served_text.startswith("served")
    assert cells[1].served_text.startswith("not served yet")
    assert report.to_json()["cells"][0]["served_text"]
    (line,) = report.server_compiled_lines()
    assert "host host-a: server compiled something else" in line and "mlp/1/CPU/" in line
    page = render_html(report)
    assert "served from cache: served" in page and "server compiled something else" in page
    assert report.ok  # evidence informs a person; it does not fail the night
