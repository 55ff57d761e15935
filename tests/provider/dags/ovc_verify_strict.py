"""Verify one model version on one host and fail on any problem."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_ovcache.operators.verify import OvcacheVerifyOperator

with DAG(
    dag_id="ovc_verify_strict",
    schedule=None,
    catchup=False,
    params={"conn": Param("ovc_host_a", type="string"), "model": Param("mlp", type="string")},
    tags=["ovcache-test"],
) as dag:
    OvcacheVerifyOperator(task_id="verify", ovcache_conn_id="{{ params.conn }}", model="{{ params.model }}")
