"""One warm-up on one host, everything templated from the run's params."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_ovcache.operators.warm import OvcacheWarmOperator

with DAG(
    dag_id="ovc_warm_one",
    schedule=None,
    catchup=False,
    params={
        "conn": Param("ovc_host_a", type="string"),
        "models": Param("mlp", type="string"),
        "versions": Param("latest:1", type="string"),
        "devices": Param("CPU", type="string"),
    },
    tags=["ovcache-test"],
) as dag:
    OvcacheWarmOperator(
        task_id="warm",
        ovcache_conn_id="{{ params.conn }}",
        models="{{ params.models }}",
        versions="{{ params.versions }}",
        devices="{{ params.devices }}",
    )
