"""``OvcacheHook.release`` over the local transport: the real agent, one run, every step's report kept."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.conftest import blobs_in


def test_release_returns_every_steps_report_in_one_agent_run(local_hosts: dict[str, Path]) -> None:
    hook = OvcacheHook("ovc_host_a")
    first = hook.release(model="mlp", version=1, properties={"PERFORMANCE_HINT": "LATENCY"})
    assert first.ok and first.failed_step is None
    report = hook.release(model="mlp", version=2, retain="latest:1", properties={"PERFORMANCE_HINT": "LATENCY"})
    assert report.ok and report.host == "host-a" and (report.model, report.version) == ("mlp", 2)
    assert [(s.step, s.status) for s in report.steps] == [
        ("version", "ok"),
        ("devices", "ok"),
        ("warm", "ok"),
        ("verify", "ok"),
        ("invalidate", "ok"),
    ]
    xcom = report.to_xcom()
    json.dumps(xcom)  # XCom must hold it
    steps = xcom["steps"]
    # each step keeps the compact result its own task would have returned
    assert steps["warm"]["result"]["summary"]["warmed"] == 1
    assert steps["warm"]["result"]["items"][0]["loaded_from_cache"] is True
    assert steps["verify"]["result"]["summary"] == {"ok": 1}
    assert [(r["model"], r["version"], r["reason"]) for r in steps["invalidate"]["result"]["removals"]] == [("mlp", 1, "retired")]
    assert steps["devices"]["result"]["devices"][0]["name"] == "CPU"
    assert len(blobs_in(local_hosts["host-a"])) == 1


def test_a_failed_step_is_reported_not_raised(local_hosts: dict[str, Path]) -> None:
    report = OvcacheHook("ovc_host_b").release(model="mlp", version=9)
    assert not report.ok
    failed = report.failed_step
    assert failed is not None and failed.step == "version" and failed.error is not None
    assert failed.error.code == "model-not-found" and "version 9 of model mlp" in failed.summary
    assert [s.status for s in report.steps[1:]] == ["not-run"] * 4
    assert report.to_xcom()["failed_step"] == "version"
