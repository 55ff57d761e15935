"""The release DAG's lean path under dag.test(): hosts marked ``lean`` are released in one agent run each."""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.fleet.inventory import parse_fleet
from airflow_ovcache.fleet.runs import lean_split, release_summary
from airflow_ovcache.outcomes import ERROR_XCOM_KEY
from airflow_ovcache.protocol import ReleaseStep
from tests.provider.conftest import DagResult, load_dag, run_dag

STEPS = [step.value for step in ReleaseStep]


def _versions(cache: Path) -> list[tuple[str, int]]:
    return sorted((e.model, e.version) for e in Manifest.load(cache / ".ovcache" / "manifest.json").entries.values())


def _mark_lean(names: list[str]) -> None:
    """Set ``lean = true`` on these hosts of the fixture's inventory."""
    inventory = Path(os.environ["OVCACHE_INVENTORY"])
    text = inventory.read_text()
    for name in names:
        text = text.replace(f'name = "{name}"\n', f'name = "{name}"\nlean = true\n')
    inventory.write_text(text)


def _instances_per_host(result: DagResult) -> Counter[str]:
    """Task instances that ran for one host (mapped ones), by the host their label names."""
    return Counter(t.label.split(" · ")[0] for t in result.tasks if t.map_index >= 0 and t.label)


def _failure_record(result: DagResult, task_id: str, map_index: int) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(
                run_id=result.run_id,
                key=ERROR_XCOM_KEY,
                task_ids=task_id,
                dag_ids="ovcache_release_warmup",
                map_indexes=map_index,
            )
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def test_a_lean_fleet_runs_two_task_instances_per_host_and_keeps_every_step(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    hosts = fleet(["h1", "h2"])
    _mark_lean(["h1", "h2"])
    dag = load_dag("ovcache_release_warmup", "release_warmup")
    assert run_dag(dag, conf={"model": "mlp", "version": 1}).state == "success"

    result = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    assert {h: _versions(p["cache"]) for h, p in hosts.items()} == {"h1": [("mlp", 2)], "h2": [("mlp", 2)]}
    per_host = _instances_per_host(result)
    assert per_host == {"h1": 2, "h2": 2}, per_host
    assert not [t for t in result.tasks if t.task_id.startswith("on_host.") and t.map_index >= 0]

    releases = result.mapped("on_lean_host.release")
    assert [t.label for t in releases] == ["h1 · mlp v2", "h2 · mlp v2"]
    for task in releases:
        assert task.state == "success"
        assert list(task.xcom["steps"]) == STEPS and all(s["status"] == "ok" for s in task.xcom["steps"].values())
    outcomes = [o.xcom for o in result.mapped("on_lean_host.outcome")]
    assert [(o["host"], o["ok"], o["lean"]) for o in outcomes] == [("h1", True, True), ("h2", True, True)]
    for o in outcomes:
        # the same per-step results the step-by-step path's outcome carries
        assert o["warm"]["items"][0]["loaded_from_cache"] is True
        assert o["verify"]["summary"] == {"ok": 1}
        assert [(r["model"], r["version"], r["reason"]) for r in o["invalidate"]["removals"]] == [("mlp", 1, "retired")]
        assert {name: s["status"] for name, s in o["steps"].items()} == dict.fromkeys(STEPS, "ok")
    summary = result.task("summary").xcom
    assert summary == {"hosts": 2, "failures": 0, "outcomes": outcomes}
    text, failures = release_summary(summary["outcomes"])
    assert not failures
    for line in text.splitlines()[1:]:
        assert "[one agent run: version ok, devices ok, warm ok, verify ok, invalidate ok]" in line, line


def test_lean_and_step_by_step_hosts_share_a_run_and_a_failed_step_is_named(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    hosts = fleet(["h1", "h2", "h3", "h4"], broken={"h3": "cache-is-a-file", "h4": "no-agent"})
    _mark_lean(["h1", "h3", "h4"])
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})

    assert result.state == "failed" and result.task("summary").state == "failed"
    per_host = _instances_per_host(result)
    assert per_host["h1"] == per_host["h3"] == per_host["h4"] == 2
    assert per_host["h2"] == 6  # step by step: wait, devices, warm, verify, invalidate, outcome
    by_host = {o.xcom["host"]: o.xcom for o in [*result.mapped("on_host.outcome"), *result.mapped("on_lean_host.outcome")]}
    assert by_host["h1"]["ok"] is True and by_host["h2"]["ok"] is True
    assert _versions(hosts["h1"]["cache"]) == _versions(hosts["h2"]["cache"]) == [("mlp", 2)]

    h3 = by_host["h3"]
    assert (h3["ok"], h3["failed_step"], h3["failure_kind"]) == (False, "warm", "agent-error")
    assert "is a file" in h3["reason"]
    assert {n: s["status"] for n, s in h3["steps"].items()} == {
        "version": "ok",
        "devices": "ok",
        "warm": "failed",
        "verify": "not-run",
        "invalidate": "not-run",
    }
    assert hosts["h3"]["cache"].read_text() == "not a directory"
    h4 = by_host["h4"]
    assert (h4["ok"], h4["failed_step"], h4["failure_kind"]) == (False, "release", "agent-missing")
    assert "pip install airflow-ovcache" in h4["reason"]

    releases = {t.label.split(" · ")[0]: t for t in result.mapped("on_lean_host.release")}
    assert releases["h3"].state == "failed" and releases["h1"].state == "success"
    record = _failure_record(result, "on_lean_host.release", releases["h3"].map_index)
    assert record["task_id"] == "warm" and record["host"] == "h3" and record["model"] == "mlp" and record["version"] == 2

    text, failures = release_summary([o for o in by_host.values()])
    (h3_line,) = [line for line in failures if "host h3" in line]
    assert re.search(r"FAILED at warm: .*is a file", h3_line)
    assert "[one agent run: version ok, devices ok, warm failed, verify not-run, invalidate not-run]" in h3_line


def _fleet(**defaults: object) -> Any:
    return parse_fleet(
        {"defaults": {"cache_dir": "/c", "repository": "/r", **defaults}, "hosts": [{"name": "a"}, {"name": "b", "lean": False}]}
    )


def test_the_lean_key_is_a_boolean_default_or_per_host() -> None:
    fleet = _fleet(lean=True)
    assert [(h.name, h.lean) for h in fleet.hosts] == [("a", True), ("b", False)]
    assert [h.name for h in lean_split(fleet.hosts)[1]] == ["a"]
    assert not any(h.lean for h in _fleet().hosts)
    with pytest.raises(UsageError, match="host a: lean must be true or false, not 'yes'"):
        _fleet(lean="yes")


def test_a_dag_that_waits_for_the_server_releases_lean_hosts_step_by_step() -> None:
    """Invalidation must wait for the server; one agent run cannot hold that deferred wait."""
    hosts = _fleet(lean=True).hosts
    per_step, lean = lean_split(hosts, waits_for_served=True)
    assert [h.name for h in per_step] == ["a", "b"] and lean == []
