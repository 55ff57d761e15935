"""Sensors: poke mode, deferral to their triggers, and the whole round trip under dag.test()."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.sensors.blob import OvcacheBlobSensor
from airflow_ovcache.sensors.device import OvcacheDeviceSensor
from airflow_ovcache.sensors.model_version import OvcacheModelVersionSensor
from airflow_ovcache.triggers.blob import OvcacheBlobTrigger
from airflow_ovcache.triggers.device import OvcacheDeviceTrigger
from airflow_ovcache.triggers.model_version import OvcacheModelVersionTrigger
from tests.provider.conftest import load_dag, run_dag


@pytest.fixture
def when_deferred() -> Iterator[Callable[[str, str, Callable[[], object]], None]]:
    """Run ``action`` in the background once ``dag_id.task_id`` is deferred (its trigger is waiting).

    Waiting for the real state change, not for a delay, makes sure the sensor's
    first check found nothing and the trigger is what sees the change.
    """
    threads: list[threading.Thread] = []
    errors: list[BaseException] = []

    def schedule(dag_id: str, task_id: str, action: Callable[[], object]) -> None:
        def body() -> None:
            from airflow.models.taskinstance import TaskInstance
            from airflow.utils.session import create_session
            from sqlalchemy import select

            try:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with create_session() as session:
                        # The deferral recorded where to resume; dag.test() then runs the trigger inline.
                        resume = session.scalar(
                            select(TaskInstance.next_method)
                            .where(TaskInstance.dag_id == dag_id, TaskInstance.task_id == task_id)
                            .where(TaskInstance.state.not_in(["success", "failed", "skipped", "upstream_failed"]))
                        )
                    if resume == "execute_complete":
                        break
                    time.sleep(0.1)
                else:
                    raise AssertionError(f"{dag_id}.{task_id} never deferred")
                time.sleep(0.5)  # let the trigger poll at least once before the change
                action()
            except BaseException as exc:  # noqa: BLE001 - reported by the fixture
                errors.append(exc)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        threads.append(thread)

    yield schedule
    for thread in threads:
        thread.join(60)
    assert not errors, errors


def test_deferrable_blob_sensor_waits_for_the_warm_up(airflow_db: Path, local_hosts: dict[str, Path], when_deferred) -> None:  # type: ignore[no-untyped-def]
    # Nothing is warmed when the sensor starts; a warm-up lands while it waits in the trigger.
    when_deferred("ovc_blob_deferred", "blob", lambda: OvcacheHook("ovc_host_a").warm(models=["mlp"], version_numbers=[1]))
    result = run_dag(load_dag("ovc_sensors", "dag"), {"conn": "ovc_host_a", "model": "mlp", "version": 1})
    blob = result.task("blob")
    assert blob.state == "success"
    assert blob.xcom["host"] == "host-a" and blob.xcom["devices"] == {"CPU": "ok"} and blob.xcom["blobs"]["CPU"].endswith(".blob")


def test_poke_mode_times_out_or_skips(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    result = run_dag(load_dag("ovc_sensors", "blob_poke"), {"conn": "ovc_host_b", "model": "mlp", "version": 2})
    assert result.task("blob").state == "failed"
    assert result.task("blob_soft").state == "skipped"


def test_device_sensors(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    result = run_dag(load_dag("ovc_sensors", "devices_dag"), {"conn": "ovc_host_a"})
    cpu = result.task("cpu")
    assert cpu.state == "success" and cpu.xcom["name"] == "CPU" and cpu.xcom["can_cache"] is True
    # no NPU on this machine: the deferred sensor times out in its trigger, and soft_fail skips it
    assert result.task("npu").state == "skipped"


def test_model_version_sensor_sees_a_new_release(
    airflow_db: Path, local_hosts: dict[str, Path], repo: Path, add_version, when_deferred
) -> None:  # type: ignore[no-untyped-def]
    when_deferred("ovc_new_version", "new_version", lambda: add_version(repo, "mlp", 3))
    result = run_dag(load_dag("ovc_sensors", "new_version_dag"), {"conn": "ovc_host_b", "model": "mlp", "newer_than": 2})
    found = result.task("new_version")
    assert found.state == "success"
    assert found.xcom == {"host": "host-b", "repository": str(repo), "model": "mlp", "version": 3, "versions": [1, 2, 3]}


def test_sensors_defer_to_their_triggers(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    blob = OvcacheBlobSensor(
        task_id="b",
        ovcache_conn_id="ovc_host_a",
        model="mlp",
        version="2",
        devices="CPU",
        deferrable=True,
        poke_interval=5,
        timeout=600,
    )
    with pytest.raises(TaskDeferred) as deferred:
        blob.execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, OvcacheBlobTrigger)
    assert trigger.serialize() == (
        "airflow_ovcache.triggers.blob.OvcacheBlobTrigger",
        {
            "ovcache_conn_id": "ovc_host_a",
            "poke_interval": 5.0,
            "timeout": 600.0,
            "cache_dir": None,
            "command_timeout": None,
            "host_name": None,
            "model": "mlp",
            "version": 2,
            "devices": ["CPU"],
            "load_check": False,
        },
    )
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() > 600

    device = OvcacheDeviceSensor(task_id="d", ovcache_conn_id="ovc_host_a", device="NPU", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        device.execute({})  # type: ignore[arg-type]
    assert isinstance(deferred.value.trigger, OvcacheDeviceTrigger) and deferred.value.trigger.condition.device == "NPU"

    version = OvcacheModelVersionSensor(task_id="m", ovcache_conn_id="ovc_host_a", model="mlp", version=7, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        version.execute({})  # type: ignore[arg-type]
    assert isinstance(deferred.value.trigger, OvcacheModelVersionTrigger) and deferred.value.trigger.condition.version == 7

    # Met on the first check: no deferral at all, the value is returned directly.
    cpu = OvcacheDeviceSensor(task_id="c", ovcache_conn_id="ovc_host_a", device="CPU", deferrable=True)
    assert cpu.execute({})["can_cache"] is True  # type: ignore[arg-type]


def test_execute_complete_turns_events_into_results_or_failures() -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

    sensor = OvcacheDeviceSensor(task_id="d", device="GPU")
    assert sensor.execute_complete({}, {"status": "success", "message": "ok", "value": {"name": "GPU"}}) == {"name": "GPU"}  # type: ignore[arg-type]
    with pytest.raises(AirflowSensorTimeout, match="still not met"):
        sensor.execute_complete({}, {"status": "timeout", "message": "still not met after 5s"})  # type: ignore[arg-type]
    with pytest.raises(AirflowException, match="d failed: host h: boom"):
        sensor.execute_complete({}, {"status": "error", "message": "host h: boom"})  # type: ignore[arg-type]


def test_sensor_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="one version number"):
        OvcacheBlobSensor(task_id="b", model="mlp", version="1,2")
    with pytest.raises(ValueError, match="not both"):
        OvcacheModelVersionSensor(task_id="m", model="mlp", version=2, newer_than=1)
    OvcacheModelVersionSensor(task_id="m", model="mlp", newer_than=0)  # "anything at all" is allowed
    OvcacheBlobSensor(task_id="b2", model="mlp", version="{{ params.version }}")
