"""The hook's devices call carries each device's hardware class from the real agent."""

from __future__ import annotations

from pathlib import Path

from airflow_ovcache.core import devices as dev
from airflow_ovcache.hooks.ovcache import OvcacheHook


def test_hook_devices_report_the_class_key(airflow_db: Path, ovcache_conn, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Regression guard: DeviceReport dropped keys it did not know; the class key must reach the task's XCom."""
    import openvino as ov

    ovcache_conn("ovc_class", host="infer-01", cache_dir=cache_dir, devices="CPU")
    cpu = OvcacheHook("ovc_class").devices(["CPU"]).find("CPU")
    core = ov.Core()
    here = dev.classify(dev.describe("CPU", core), core)
    assert cpu is not None and cpu.class_key == here.class_key and cpu.class_parts == here.class_parts
    assert cpu.to_xcom()["class_key"] == here.class_key
