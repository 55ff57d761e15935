"""The nightly verification DAG under dag.test(): finds drift, repairs it, reports it."""

from __future__ import annotations

import json
from pathlib import Path

from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.samples import swap_weights_in_place
from tests.provider.conftest import load_dag, run_dag


def test_nightly_repairs_a_deleted_blob_and_a_swapped_model_and_reports_them(example_dags: Path, fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    hosts = fleet(["h1", "h2", "h3"])
    warmup = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert warmup.state == "success"

    # drift: a blob deleted on h2, model.bin swapped in place (same size) on h3
    (entry_h2,) = Manifest.load(hosts["h2"]["cache"] / ".ovcache" / "manifest.json").entries.values()
    (hosts["h2"]["cache"] / entry_h2.blob).unlink()
    swap_weights_in_place(hosts["h3"]["models"] / "mlp" / "2" / "model.bin", seed=21)

    result = run_dag(load_dag("ovcache_nightly_verify", "nightly_verify"))
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    report = result.task("report").xcom
    assert report["counts"] == {"ok": 1, "repaired": 2, "unrepaired": 0, "unreachable": 0, "host-error": 0}
    data = json.loads(Path(report["json"]).read_text())
    cells = {c["host"]: c for c in data["cells"]}
    assert (cells["h1"]["outcome"], cells["h2"]["before"], cells["h3"]["before"]) == ("ok", "missing", "stale-model")
    assert all(c["after"] == "ok" and c["load_ms"] for c in cells.values())
    page = Path(report["html"]).read_text()
    assert "repaired (missing)" in page and "repaired (stale-model)" in page
    assert (Path(report["html"]).parent / "latest.html").read_text() == page

    # and a second night finds nothing to do
    again = run_dag(load_dag("ovcache_nightly_verify", "nightly_verify"))
    assert again.task("report").xcom["counts"] == {"ok": 3, "repaired": 0, "unrepaired": 0, "unreachable": 0, "host-error": 0}


def test_unreachable_host_and_unrepairable_entry_fail_the_run_by_name(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    import shutil

    hosts = fleet(["h1", "h2"])
    assert run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2}).state == "success"
    shutil.rmtree(hosts["h1"]["models"] / "mlp" / "2")  # model files gone: nothing to rebuild from
    hosts = fleet(["h1", "h2", "h3"], broken={"h3": "no-agent"})

    result = run_dag(load_dag("ovcache_nightly_verify", "nightly_verify"))
    assert result.state == "failed"
    assert result.task("report").state == "failed"
    outcomes = {o.xcom["host"]: o.xcom for o in result.mapped("on_host.outcome")}
    assert "pip install airflow-ovcache" in outcomes["h3"]["error"]
    assert [u["status"] for u in outcomes["h1"]["unrepaired"]] == ["model-missing"]
    assert outcomes["h2"]["ok"] is True
    latest = json.loads((Path(hosts["h1"]["cache"]).parents[1] / "reports" / "latest.json").read_text())
    assert latest["problems"][0].startswith("host h3: agent missing or too old")  # reached, not a network problem
    assert latest["unreachable"] == {} and latest["host_errors"]["h3"]["kind"] == "agent-missing"
    assert latest["problems"][1].startswith("host h1, model mlp, version 2, device CPU: model-missing")
