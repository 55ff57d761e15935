"""Warm, verify and invalidate operators under dag.test(): results, summaries and failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator
from airflow_ovcache.samples import swap_weights_in_place
from tests.conftest import blobs_in
from tests.provider.conftest import failure_lines, load_dag, run_dag


def test_partial_failure_names_the_failed_item(
    airflow_db: Path, local_hosts: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("ovc_warm_one"), {"conn": "ovc_host_b", "models": "mlp", "devices": "NPU,CPU"})
    out = capfd.readouterr()
    assert result.state == "failed" and result.task("warm").state == "failed"
    failures = failure_lines(out.out + out.err)
    assert failures, "the task log has no failure line"
    assert failures[0].startswith("ItemsFailed: host host-b: 1 of 2 warm-up item(s) failed: model mlp, version 2, device NPU: ")
    assert "'NPU' is not present" in failures[0]
    # the CPU item was still published
    assert len(blobs_in(local_hosts["host-b"])) == 1


def test_missing_model_fails_with_the_agents_reason(
    airflow_db: Path, local_hosts: dict[str, Path], capfd: pytest.CaptureFixture[str]
) -> None:
    result = run_dag(load_dag("ovc_warm_one"), {"conn": "ovc_host_a", "models": "resnet"})
    out = capfd.readouterr()
    assert result.task("warm").state == "failed"
    failures = failure_lines(out.out + out.err)
    assert failures[0].startswith(
        "AgentCommandError: host host-a, model resnet, version latest:1, device CPU: model 'resnet' is not in repository"
    )
    assert "[model-not-found]" in failures[0]


def test_verify_fails_on_a_stale_blob(
    airflow_db: Path, local_hosts: dict[str, Path], repo: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    OvcacheHook("ovc_host_a").warm(models=["mlp"], versions="all")
    swap_weights_in_place(repo / "mlp" / "2" / "model.bin", seed=5)
    result = run_dag(load_dag("ovc_verify_strict"), {"conn": "ovc_host_a", "model": "mlp"})
    out = capfd.readouterr()
    assert result.task("verify").state == "failed"
    failure = failure_lines(out.out + out.err)[0]
    assert failure.startswith("ProblemsFound: host host-a, model mlp: verify found 1 problem(s)")
    assert "model mlp, version 2, device CPU: stale-model" in failure
    assert "1 can be rebuilt by a warm-up" in failure


def test_maintenance_repairs_then_prunes(airflow_db: Path, local_hosts: dict[str, Path], repo: Path) -> None:
    hook = OvcacheHook("ovc_host_a")
    hook.warm(models=["mlp"], versions="all")
    hook.warm(models=["tiny"])
    swap_weights_in_place(repo / "mlp" / "1" / "model.bin", seed=6)

    result = run_dag(load_dag("ovc_maintenance"), {"conn": "ovc_host_a", "keep": "latest:1"})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    survey = result.task("survey").xcom
    assert survey["ok"] is False and survey["problems"] == 1
    assert survey["repairable"] == [{"model": "mlp", "version": 1, "device": "CPU"}]
    (repair,) = result.mapped("repair")
    assert [(i["model"], i["version"], i["status"]) for i in repair.xcom["items"]] == [("mlp", 1, "warmed")]
    assert result.task("check").xcom["ok"] is True

    plan = result.task("plan").xcom
    assert plan["dry_run"] is True and plan["removed"] == 0
    assert [(r["reason"], r["model"], r["version"]) for r in plan["removals"]] == [("retired", "mlp", 1)]
    prune = result.task("prune").xcom
    assert prune["dry_run"] is False and prune["removed"] == 1 and prune["bytes_freed"] > 0
    assert len(blobs_in(local_hosts["host-a"])) == 2  # mlp@2 and tiny@1 stay


def test_arguments_are_checked_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="no_cache_device"):
        OvcacheWarmOperator(task_id="w", no_cache_device="ignore")
    with pytest.raises(ValueError, match="not both"):
        OvcacheWarmOperator(task_id="w", versions="latest:2", version_numbers=[3])
    with pytest.raises(ValueError, match="not a version number"):
        OvcacheWarmOperator(task_id="w", version_numbers=["three"])
    with pytest.raises(ValueError, match="compile_mode"):
        OvcacheWarmOperator(task_id="w", compile_mode="bytes")
    with pytest.raises(ValueError, match="single model name"):
        OvcacheWarmOperator(task_id="w", release="ovmodel://repo/a/b")
    with pytest.raises(ValueError, match="store must be an absolute path on the host, not 'store'"):
        OvcacheWarmOperator(task_id="w", store="store")
    with pytest.raises(ValueError, match="checksum"):
        OvcacheVerifyOperator(task_id="v", checksum="sometimes")
    with pytest.raises(ValueError, match="needs a model"):
        OvcacheVerifyOperator(task_id="v", version=3)
    with pytest.raises(ValueError, match="orphan_min_age"):
        OvcacheInvalidateOperator(task_id="i", orphan_min_age=-1)
    # templated values are left for rendering
    OvcacheWarmOperator(task_id="w", version_numbers="{{ params.v }}", cache_mode="{{ params.mode }}")
    assert OvcacheWarmOperator(task_id="w2", cache_mode="optimize_size").cache_mode == "OPTIMIZE_SIZE"
    assert set(OvcacheWarmOperator.template_fields) >= {"ovcache_conn_id", "models", "versions", "devices", "cache_dir"}


def test_from_store_reads_a_flag_as_it_arrives_from_a_template_or_an_xcom() -> None:
    from airflow_ovcache.operators.arguments import as_flag

    assert [as_flag(v, "from_store") for v in (True, "True", "true", "1", False, "False", "", None)] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="from_store must be true or false, not 'maybe'"):
        as_flag("maybe", "from_store")
