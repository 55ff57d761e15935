"""Warm, verify, plan and sense across two hosts x two models under dag.test(), with real compiles."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import blobs_in
from tests.provider.conftest import load_dag, run_dag


def test_warm_verify_sense_over_hosts_and_models(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    result = run_dag(load_dag("ovc_fleet"))

    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    warms = result.mapped("warm")
    assert len(warms) == 4
    seen = set()
    for task in warms:
        xcom = task.xcom
        assert set(xcom) >= {"host", "cache_dir", "summary", "items"}
        assert xcom["summary"]["failed"] == 0
        model = xcom["items"][0]["model"]
        seen.add((xcom["host"], model))
        assert all(item["status"] == "warmed" and item["device"] == "CPU" for item in xcom["items"])
        assert xcom["cache_dir"] == str(local_hosts[xcom["host"]])
    assert seen == {("host-a", "mlp"), ("host-a", "tiny"), ("host-b", "mlp"), ("host-b", "tiny")}
    # mlp has versions 1 and 2, tiny has 1: three blobs on each host
    for cache in local_hosts.values():
        assert len(blobs_in(cache)) == 3

    verifies = result.mapped("verify")
    assert [v.xcom["host"] for v in verifies] == ["host-a", "host-b"]
    assert all(v.xcom["ok"] and v.xcom["summary"] == {"ok": 3} for v in verifies)

    plans = result.mapped("plan")
    for plan in plans:
        assert plan.xcom["dry_run"] and [(r["model"], r["version"]) for r in plan.xcom["removals"]] == [("mlp", 1)]

    blobs = result.mapped("blob")
    assert len(blobs) == 4
    assert all(b.state == "success" and b.xcom["devices"] == {"CPU": "ok"} for b in blobs)
