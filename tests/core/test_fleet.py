from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.fleet.inventory import load_fleet, parse_fleet

INVENTORY = """
[defaults]
cache_dir = "/var/cache/ov"
repository = "/models"
retain = "latest:1"
properties = { PERFORMANCE_HINT = "LATENCY" }

[[hosts]]
name = "infer-01"
conn_id = "ovc_01"
labels = ["eu", "cpu"]

[[hosts]]
name = "infer-02"
queue = "infer-02"
conn_id = "ovcache_local"
devices = ["CPU", "GPU"]
labels = ["eu", "gpu"]
properties = { NUM_STREAMS = "2" }
"""


def test_inventory_defaults_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(INVENTORY)
    fleet = load_fleet(path)
    one, two = fleet.hosts
    assert (one.conn_id, one.devices, one.retain, one.cache_dir) == ("ovc_01", ("CPU",), "latest:1", "/var/cache/ov")
    assert (two.conn_id, two.queue, two.devices) == ("ovcache_local", "infer-02", ("CPU", "GPU"))
    assert two.properties == {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "2"}
    assert [h.name for h in fleet.select(labels=["gpu"])] == ["infer-02"]
    assert [h.name for h in fleet.select(names=["infer-01"])] == ["infer-01"]
    assert one.to_json()["conn_id"] == "ovc_01"
    assert (
        parse_fleet({"hosts": [{"name": "infer-9.eu", "cache_dir": "/c", "repository": "/r"}]}).hosts[0].conn_id
        == "ovcache_infer_9_eu"
    )


def test_inventory_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(INVENTORY)
    monkeypatch.setenv("OVCACHE_INVENTORY", str(path))
    assert len(load_fleet().hosts) == 2


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"hosts": []}, "lists no"),
        ({"hosts": [{"name": "a b", "cache_dir": "/c", "repository": "/r"}]}, "not a plain host name"),
        ({"hosts": [{"name": "h1", "repository": "/r"}]}, "host h1 has no cache_dir"),
        ({"hosts": [{"name": "h1", "cache_dir": "c", "repository": "/r"}]}, "absolute path"),
        ({"hosts": [{"name": "h1", "cache_dir": "/c", "repository": "/r", "colour": "red"}]}, "unknown key(s) colour"),
        ({"hosts": [{"name": "h1", "cache_dir": "/c", "repository": "/r"}] * 2}, "listed twice: h1"),
    ],
)
def test_inventory_mistakes_are_named(data: dict, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_fleet(data)


def test_unknown_host_selection_is_an_error(tmp_path: Path) -> None:
    fleet = parse_fleet({"hosts": [{"name": "h1", "cache_dir": "/c", "repository": "/r"}]})
    with pytest.raises(UsageError, match="ghost"):
        fleet.select(["ghost"])


def test_missing_inventory_says_how_to_set_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OVCACHE_INVENTORY", raising=False)
    with pytest.raises(UsageError, match="no fleet inventory"):
        load_fleet()
    with pytest.raises(UsageError, match="cannot read"):
        load_fleet(tmp_path / "none.toml")
