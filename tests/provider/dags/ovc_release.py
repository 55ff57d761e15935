"""A release pipeline publishes a model version; the warm-up DAG it schedules warms that version."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, AssetAlias, Param, task

from airflow_ovcache.assets import model_release
from airflow_ovcache.operators.warm import OvcacheWarmOperator

RELEASE = model_release("test-repo", "mlp")

with DAG(
    dag_id="ovc_release_publish",
    schedule=None,
    catchup=False,
    params={"version": Param(1, type="integer")},
    tags=["ovcache-test"],
) as publish_dag:

    @task(outlets=[RELEASE])
    def publish(*, outlet_events: Any, params: Any) -> int:
        version = int(params["version"])
        outlet_events[RELEASE].extra = {"version": version, "published_by": "ovc_release_publish"}
        return version

    publish()

with DAG(dag_id="ovc_release_warm", schedule=[RELEASE], catchup=False, tags=["ovcache-test"]) as dag:
    OvcacheWarmOperator.partial(
        task_id="warm",
        release=RELEASE,
        outlets=[AssetAlias("ovcache-test-release-caches")],
    ).expand(ovcache_conn_id=["ovc_host_a", "ovc_host_b"])
