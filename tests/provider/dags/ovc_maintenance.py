"""Nightly-style maintenance: verify, repair what a warm-up can rebuild, verify again; then prune."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator

with DAG(
    dag_id="ovc_maintenance",
    schedule=None,
    catchup=False,
    params={"conn": Param("ovc_host_a", type="string"), "keep": Param("latest:1", type="string")},
    tags=["ovcache-test"],
) as dag:
    survey = OvcacheVerifyOperator(task_id="survey", ovcache_conn_id="{{ params.conn }}", fail_on_problems=False)

    @task
    def repairs(report: dict[str, Any], conn_id: str) -> list[dict[str, Any]]:
        return [
            {"ovcache_conn_id": conn_id, "models": [r["model"]], "version_numbers": [r["version"]], "devices": [r["device"]]}
            for r in report["repairable"]
        ]

    repair = OvcacheWarmOperator.partial(task_id="repair").expand_kwargs(repairs(survey.output, "{{ params.conn }}"))
    check = OvcacheVerifyOperator(task_id="check", ovcache_conn_id="{{ params.conn }}", trigger_rule="none_failed")
    plan = OvcacheInvalidateOperator(
        task_id="plan", ovcache_conn_id="{{ params.conn }}", versions="{{ params.keep }}", dry_run=True
    )
    prune = OvcacheInvalidateOperator(task_id="prune", ovcache_conn_id="{{ params.conn }}", versions="{{ params.keep }}")
    repair >> check >> plan >> prune
