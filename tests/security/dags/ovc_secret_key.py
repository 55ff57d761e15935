"""Warm, verify (with load checks) and invalidate an encrypted cache, the key coming from a connection."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator

with DAG(dag_id="ovc_secret_key", schedule=None, catchup=False, tags=["ovcache-test"]) as dag:
    warm = OvcacheWarmOperator(
        task_id="warm",
        ovcache_conn_id="ovc_secret_host",
        models="mlp",
        versions="all",
        confirm=True,
        encryption_key_conn_id="ovc_cache_key",
    )
    verify = OvcacheVerifyOperator(task_id="verify", ovcache_conn_id="ovc_secret_host", load_check=True)
    invalidate = OvcacheInvalidateOperator(task_id="invalidate", ovcache_conn_id="ovc_secret_host", versions="latest:1")
    warm >> verify >> invalidate
