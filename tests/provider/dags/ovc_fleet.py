"""Warm every (host, model) pair, verify and plan a prune on each host, and check each warmed blob with a sensor."""

from __future__ import annotations

from airflow.sdk import DAG, AssetAlias

from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator
from airflow_ovcache.sensors.blob import OvcacheBlobSensor

HOSTS = ["ovc_host_a", "ovc_host_b"]

with DAG(dag_id="ovc_fleet", schedule=None, catchup=False, tags=["ovcache-test"]) as dag:
    # hosts x models: the cross product of the two expanded arguments
    warm = OvcacheWarmOperator.partial(
        task_id="warm",
        versions="all",
        outlets=[AssetAlias("ovcache-test-fleet")],
    ).expand(ovcache_conn_id=HOSTS, models=["mlp", "tiny"])

    verify = OvcacheVerifyOperator.partial(task_id="verify").expand(ovcache_conn_id=HOSTS)

    # one sensor per warmed item, built from the warm results
    blobs = OvcacheBlobSensor.partial(task_id="blob", poke_interval=1, timeout=30).expand_kwargs(
        warm.output.map(
            lambda result: {
                "ovcache_conn_id": "ovc_host_a" if result["host"] == "host-a" else "ovc_host_b",
                "model": result["items"][-1]["model"],
                "version": result["items"][-1]["version"],
                "devices": ["CPU"],
            }
        )
    )
    plan = OvcacheInvalidateOperator.partial(task_id="plan", versions="latest:1", dry_run=True).expand(ovcache_conn_id=HOSTS)
    warm >> verify >> plan
