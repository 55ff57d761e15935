"""Sensors in poke and deferrable mode, each DAG templated from its params."""

from __future__ import annotations

from airflow.sdk import DAG, Param

from airflow_ovcache.sensors.blob import OvcacheBlobSensor
from airflow_ovcache.sensors.device import OvcacheDeviceSensor
from airflow_ovcache.sensors.model_version import OvcacheModelVersionSensor

PARAMS = {
    "conn": Param("ovc_host_a", type="string"),
    "model": Param("mlp", type="string"),
    "version": Param(1, type="integer"),
}

with DAG(dag_id="ovc_blob_deferred", schedule=None, catchup=False, params=PARAMS, tags=["ovcache-test"]) as dag:
    OvcacheBlobSensor(
        task_id="blob",
        ovcache_conn_id="{{ params.conn }}",
        model="{{ params.model }}",
        version="{{ params.version }}",
        devices=["CPU"],
        deferrable=True,
        poke_interval=0.3,
        timeout=30,
    )

with DAG(dag_id="ovc_blob_poke", schedule=None, catchup=False, params=PARAMS, tags=["ovcache-test"]) as blob_poke:
    OvcacheBlobSensor(
        task_id="blob",
        ovcache_conn_id="{{ params.conn }}",
        model="{{ params.model }}",
        version="{{ params.version }}",
        poke_interval=0.5,
        timeout=2,
    )
    OvcacheBlobSensor(
        task_id="blob_soft",
        ovcache_conn_id="{{ params.conn }}",
        model="{{ params.model }}",
        version="{{ params.version }}",
        poke_interval=0.5,
        timeout=1,
        soft_fail=True,
    )

with DAG(dag_id="ovc_devices", schedule=None, catchup=False, params=PARAMS, tags=["ovcache-test"]) as devices_dag:
    OvcacheDeviceSensor(task_id="cpu", ovcache_conn_id="{{ params.conn }}", device="CPU", deferrable=True, timeout=30)
    OvcacheDeviceSensor(
        task_id="npu",
        ovcache_conn_id="{{ params.conn }}",
        device="NPU",
        deferrable=True,
        poke_interval=0.3,
        timeout=1,
        soft_fail=True,
    )

with DAG(
    dag_id="ovc_new_version",
    schedule=None,
    catchup=False,
    params={**PARAMS, "newer_than": Param(2, type="integer")},
    tags=["ovcache-test"],
) as new_version_dag:
    OvcacheModelVersionSensor(
        task_id="new_version",
        ovcache_conn_id="{{ params.conn }}",
        model="{{ params.model }}",
        newer_than="{{ params.newer_than }}",
        deferrable=True,
        poke_interval=0.3,
        timeout=30,
    )
