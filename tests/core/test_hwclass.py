"""Hardware classes: a device's class key is stable, made of what a blob depends on, and reported by ``ovcache devices``.

The key builder is a pure function over queried values, so the GPU/NPU shape
(architecture, ``CACHING_PROPERTIES``) is tested over a dict of properties;
everything else runs the real OpenVINO CPU plugin and the real agent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from airflow_ovcache.core import devices as dev
from airflow_ovcache.core import hostfacts
from airflow_ovcache.protocol.location import Location
from tests.conftest import ovcache

SCHEMA = json.loads((Path(__file__).parents[2] / "airflow_ovcache" / "cli" / "agent-schema.json").read_text())
KEY = re.compile(r"^[a-z0-9_]+-[0-9a-f]{16}$")
RUNTIME = "2026.4.1-22982-e213a147257-releases/2026/4"
# What a GPU plugin reports, as values: the builder must not care where they came from.
GPU_PROPERTIES = {
    "FULL_DEVICE_NAME": "Intel(R) Arc(TM) A770 Graphics (dGPU)",
    "DEVICE_ARCHITECTURE": "GPU: vendor=0x8086 arch=v12.55.8",
    "GPU_EXECUTION_UNITS_COUNT": 512,
    "INFERENCE_PRECISION_HINT": "f16",
    "GPU_DRIVER_VERSION": "24.35.30872",
}


def _cpu_devices(*args: str) -> dict:  # type: ignore[type-arg]
    run = ovcache("devices", "--device", "CPU", "--json", *args)
    assert run.returncode == 0, run.stderr
    doc = run.json
    jsonschema.validate(doc, SCHEMA)
    (cpu,) = doc["result"]["devices"]
    return cpu  # type: ignore[no-any-return]


def test_builder_key_changes_with_every_part() -> None:
    """Each part (runtime, ISA, device type, every property) moves the key; the order properties come in does not."""
    base = dev.hardware_class("GPU", RUNTIME, GPU_PROPERTIES)
    assert KEY.match(base.key) and base.key.startswith("gpu-")
    assert base.parts["device"] == "GPU" and base.parts["runtime"] == RUNTIME
    assert base.parts["GPU_EXECUTION_UNITS_COUNT"] == "512"
    assert dev.hardware_class("GPU.1", RUNTIME, dict(reversed(list(GPU_PROPERTIES.items())))) == base
    variants = [
        dev.hardware_class("GPU", "2026.3.0-21000-0123456789a-releases/2026/3", GPU_PROPERTIES),
        dev.hardware_class("NPU", RUNTIME, GPU_PROPERTIES),
        dev.hardware_class("GPU", RUNTIME, GPU_PROPERTIES, isa="avx2"),
        dev.hardware_class("GPU", RUNTIME, {**GPU_PROPERTIES, "GPU_DEVICE_ID": "0x56a0"}),
    ]
    for name, value in GPU_PROPERTIES.items():
        variants.append(dev.hardware_class("GPU", RUNTIME, {**GPU_PROPERTIES, name: f"{value}x"}))
    keys = {v.key for v in variants}
    assert base.key not in keys and len(keys) == len(variants)
    # an unreadable property (None) is left out rather than hashed as a word
    assert dev.hardware_class("GPU", RUNTIME, {**GPU_PROPERTIES, "GPU_UARCH_VERSION": None}) == base


def test_builder_cpu_isa_and_value_text() -> None:
    """The ISA is a part of its own; values that are containers or enums hash by stable text."""
    props = {"FULL_DEVICE_NAME": "Intel(R) Xeon(R) Processor", "DEVICE_ARCHITECTURE": "intel64"}
    avx2 = dev.hardware_class("CPU", RUNTIME, props, isa="AVX2")
    amx = dev.hardware_class("CPU", RUNTIME, props, isa="AVX512 and AMX")
    assert avx2.key != amx.key and avx2.parts["isa"] == "AVX2" and avx2.key.startswith("cpu-")
    listed = dev.hardware_class("GPU", RUNTIME, {"X": {"b": 1, "a": [2, 3]}})
    assert listed.parts["X"] == '{"a": [2, 3], "b": 1}'


def test_cpu_class_is_the_builder_over_what_the_plugin_reports(tmp_path: Path) -> None:
    """classify() on the real CPU plugin: FULL_DEVICE_NAME, the runtime build, the probed ISA and CACHING_PROPERTIES."""
    import openvino as ov

    core = ov.Core()
    info = dev.classify(dev.describe("CPU", core), core)
    caching = dict(core.get_property("CPU", "CACHING_PROPERTIES"))
    assert set(caching) <= set(info.class_parts)
    assert info.class_parts["FULL_DEVICE_NAME"] == core.get_property("CPU", "FULL_DEVICE_NAME")
    assert info.class_parts["runtime"] == ov.get_version()
    isa = hostfacts.probe_isa()
    assert isa and info.class_parts["isa"] == isa
    expected = dev.hardware_class("CPU", ov.get_version(), dev.class_properties("CPU", core), isa)
    assert info.class_key == expected.key and info.class_parts == expected.parts
    assert dev.classify(dev.describe("CPU", core), core).class_key == info.class_key  # stable within a process
    # a virtual device's class is made from the classes it runs on
    auto = dev.classify(dev.describe("AUTO:CPU", core), core)
    assert auto.class_key and auto.class_key.startswith("auto-") and auto.class_parts["over"] == info.class_key


def test_agent_reports_the_same_key_across_processes(tmp_path: Path) -> None:
    """Two agent processes, with and without a cache's host facts, report one key; the envelope validates."""
    import openvino as ov

    core = ov.Core()
    here = dev.classify(dev.describe("CPU", core), core)
    first, second = _cpu_devices(), _cpu_devices()
    assert first["class_key"] == second["class_key"] == here.class_key
    assert first["class_parts"] == here.class_parts

    cache = tmp_path / "cache"
    (cache / ".ovcache").mkdir(parents=True, mode=0o700)
    cache.chmod(0o700)
    with_facts = _cpu_devices("--cache-dir", str(cache))
    facts = json.loads((cache / ".ovcache" / "host.json").read_text())
    assert facts["isa"] == here.class_parts["isa"]  # probed once and remembered, as warm does
    assert with_facts["class_key"] == _cpu_devices("--cache-dir", str(cache))["class_key"] == here.class_key


def test_table_shows_the_key_and_its_parts() -> None:
    run = ovcache("devices", "--device", "CPU")
    assert run.returncode == 0, run.stderr
    assert re.search(r"cpu-[0-9a-f]{16}", run.stdout) and "isa = " in run.stdout and "runtime = " in run.stdout


def test_device_report_carries_the_class() -> None:
    """The hook's DeviceReport reads the key and its parts from the agent's envelope and returns them in XCom."""
    # Imported here: the hook side imports Airflow, which must not load before tests/provider points it at a test home.
    from airflow_ovcache.hooks.envelope import AgentRun
    from airflow_ovcache.hooks.reports import DeviceReport, DevicesReport

    run = ovcache("devices", "--device", "CPU", "--json", env={"OVCACHE_HOST": "infer-07"})
    report = DevicesReport.from_run(AgentRun.parse(run.stdout, run.returncode, Location("infer-07")))
    cpu = report.find("CPU")
    assert cpu is not None and KEY.match(cpu.class_key) and cpu.class_parts["device"] == "CPU"
    xcom = cpu.to_xcom()
    assert xcom["class_key"] == cpu.class_key and xcom["class_parts"] == cpu.class_parts
    json.dumps(xcom)
    old = DeviceReport.from_json({"name": "CPU", "full_name": "x", "capabilities": [], "can_cache": True})
    assert old.class_key == "" and old.class_parts == {}


@pytest.mark.parametrize("name", ["GPU.1", "HETERO:GPU,CPU", "BATCH:CPU(4)", "cpu"])
def test_device_type_of(name: str) -> None:
    assert dev.device_type_of(name) in {"GPU", "HETERO", "BATCH", "CPU"}
