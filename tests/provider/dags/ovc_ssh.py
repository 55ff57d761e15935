"""Warm-up and verify on a host reached over SSH (connection ovc_ssh_host)."""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator

with DAG(dag_id="ovc_ssh", schedule=None, catchup=False, tags=["ovcache-test"]) as dag:
    warm = OvcacheWarmOperator(task_id="warm", ovcache_conn_id="ovc_ssh_host", models=["mlp"], versions="all")
    verify = OvcacheVerifyOperator(task_id="verify", ovcache_conn_id="ovc_ssh_host", model="mlp")
    warm >> verify
