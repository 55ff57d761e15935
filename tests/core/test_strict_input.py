"""Every parser of user input refuses a wrong type instead of coercing it (issue 10, items 2 and 6).

The instance that was found: ``{"specific": {"versions": "12"}}`` read digit by
digit, retaining 1 and 2 and retiring 12. The class: policies, property values,
sizes, durations, the inventory, serving configs and connection extras (the
last in tests/provider/hooks/test_strict_hook.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from airflow_ovcache.core import values
from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.policy import VersionPolicy
from airflow_ovcache.core.spec import CacheSpec, ServingConfig
from airflow_ovcache.fleet.inventory import parse_fleet
from tests.conftest import ovcache


@pytest.mark.parametrize(
    "policy",
    [
        {"specific": {"versions": "12"}},
        {"specific": {"versions": [1, "2"]}},
        {"specific": {"versions": [True]}},
        {"specific": {"versions": [1.0]}},
        {"latest": {"num_versions": "2"}},
        {"latest": {"num_versions": 0}},
        {"latest": {"count": 2}},
        {"latest": 2},
        {"newest": {}},
        '{"specific": {"versions": "12"}}',
    ],
)
def test_policy_types_are_refused(policy: object) -> None:
    with pytest.raises(UsageError):
        VersionPolicy.parse(policy)  # type: ignore[arg-type]


def test_a_string_of_versions_never_retires_the_one_meant(repo: Path, cache_dir: Path, add_version) -> None:  # type: ignore[no-untyped-def]
    for number in (1, 2, 12):
        if not (repo / "mlp" / str(number)).exists():
            add_version(repo, "mlp", number)
    assert ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--versions", "all").returncode == 0
    run = ovcache("invalidate", "--cache-dir", str(cache_dir), "--versions", '{"specific":{"versions":"12"}}')
    assert run.returncode == 2 and "is not a list of version numbers" in run.stderr
    after = ovcache("status", "--cache-dir", str(cache_dir), "--json").json["result"]["entries"]
    assert {e["version"] for e in after if e["model"] == "mlp"} == {1, 2, 12}  # nothing was retired
    good = VersionPolicy.parse('{"specific": {"versions": [12]}}')
    assert good.select([1, 2, 12]) == [12]


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}, None, float("nan"), b"x"])
def test_property_values_are_scalars(value: object) -> None:
    with pytest.raises(UsageError):
        CacheSpec.make(properties={"NUM_STREAMS": value})


def test_property_scalars_keep_their_meaning() -> None:
    spec = CacheSpec.make(properties={"NUM_STREAMS": 2, "ENABLE_MMAP": True, "X": "LATENCY"})
    assert spec.property_dict == {"NUM_STREAMS": "2", "ENABLE_MMAP": "YES", "X": "LATENCY"}


@pytest.mark.parametrize(
    "section",
    [
        {"devices": 5},
        {"devices": ["CPU", 7]},
        {"compile_mode": 1},
        {"properties": "PERFORMANCE_HINT=LATENCY"},
        {"model_file": ["a.xml"]},
    ],
)
def test_serving_config_types(section: dict[str, object]) -> None:
    config = ServingConfig(models={"m": section}, source="serving.toml")
    with pytest.raises(UsageError) as info:
        config.specs_for("m")
    assert "serving.toml" in info.value.message and "model m" in info.value.one_line()


def test_serving_config_devices_may_be_a_comma_list() -> None:
    specs = ServingConfig(models={"m": {"devices": "CPU, GPU"}}).specs_for("m")
    assert [s.device for s in specs] == ["CPU", "GPU"]


@pytest.mark.parametrize(
    ("host", "needle"),
    [
        ({"labels": "eu-west"}, "labels"),
        ({"devices": [1]}, "devices"),
        ({"cache_dir": 7}, "cache_dir"),
        ({"retain": "latest:x"}, "retain"),
        ({"retain": 2}, "retain"),
        ({"properties": {"NUM_STREAMS": [1]}}, "properties.NUM_STREAMS"),
        ({"queue": ["q"]}, "queue"),
        ({"name": 5}, "host name"),
    ],
)
def test_inventory_types(host: dict[str, object], needle: str) -> None:
    data = {"defaults": {"cache_dir": "/c", "repository": "/r"}, "hosts": [{"name": "infer-01", **host}]}
    with pytest.raises(UsageError) as info:
        parse_fleet(data, "fleet.toml")
    assert needle in info.value.message and "fleet.toml" in info.value.message


def test_inventory_label_list_is_kept_whole() -> None:
    data = {"defaults": {"cache_dir": "/c", "repository": "/r"}, "hosts": [{"name": "h", "labels": ["eu-west"]}]}
    assert parse_fleet(data).hosts[0].labels == ("eu-west",)


# -- sizes and durations (item 6) -----------------------------------------------------------------


@pytest.mark.parametrize("text", ["inf", "nan", "-1G", "1e400", "20X", "", "G", "1.2.3M", "99999999999T"])
def test_sizes_refused(text: str) -> None:
    with pytest.raises(ValueError):
        values.parse_size(text)


def test_sizes_read() -> None:
    assert values.parse_size("20G") == 20 << 30 and values.parse_size("512MiB") == 512 << 20
    assert values.parse_size("1.5k") == 1536 and values.parse_size(0) == 0


@pytest.mark.parametrize("value", ["nan", "inf", "-1", True, "1e9", [1], math.inf])
def test_durations_refused(value: object) -> None:
    with pytest.raises(ValueError):
        values.parse_seconds(value)


@pytest.mark.parametrize("value", [True, 2.5, "2x", "-1", None])
def test_counts_refused(value: object) -> None:
    with pytest.raises(ValueError):
        values.parse_count(value)


@pytest.mark.parametrize(
    "args",
    [
        ["invalidate", "--max-bytes", "inf"],
        ["invalidate", "--max-bytes", "-5G"],
        ["invalidate", "--orphan-min-age", "nan"],
        ["invalidate", "--lock-timeout", "nan"],
        ["verify", "--lock-timeout", "inf"],
        ["verify", "--version", "0"],
    ],
)
def test_numbers_on_the_command_line(cache_dir: Path, args: list[str]) -> None:
    cache_dir.mkdir()
    run = ovcache(*args, "--cache-dir", str(cache_dir), "--json")
    assert run.returncode == 2 and "Traceback" not in run.stderr
    error = run.json["error"]
    assert error["code"] == "usage" and args[1] in error["message"]
    assert len([line for line in run.stderr.splitlines() if line.startswith("ovcache: error:")]) == 1
