"""``OvcacheHook.store_put`` and ``install`` over the local transport: host a compiles and puts, host b installs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ovcache.hooks.commands import InstallRequest, RequestError, StorePutRequest, WarmRequest, command_args
from airflow_ovcache.hooks.errors import OvcacheHookError
from airflow_ovcache.hooks.ovcache import OvcacheHook


def test_store_requests_build_the_agent_flags() -> None:
    assert command_args(StorePutRequest("/c", "/s", "mlp", 2, "CPU")) == [
        "--cache-dir", "/c", "--store", "/s", "--model", "mlp", "--version", "2", "--device", "CPU",
    ]  # fmt: skip
    warm = WarmRequest("/c", "/m", models=("mlp",), version_numbers=(2,))
    assert command_args(InstallRequest(warm, "/s")) == [
        "--cache-dir", "/c", "--repository", "/m", "--model", "mlp", "--version-number", "2", "--store", "/s",
    ]  # fmt: skip
    assert command_args(InstallRequest(warm, "/s", compile_if_unreachable=True))[-1] == "--compile-if-unreachable"
    with pytest.raises(RequestError, match="store"):
        command_args(StorePutRequest("/c", None))
    with pytest.raises(RequestError, match="confirm"):
        command_args(InstallRequest(WarmRequest("/c", "/m", confirm=True), "/s"))


def test_put_on_one_host_install_on_the_other(local_hosts: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    host_a, host_b = OvcacheHook("ovc_host_a"), OvcacheHook("ovc_host_b")
    assert host_a.warm(models=["mlp"], confirm=True).summary["warmed"] == 1
    put = host_a.store_put(store=str(store))
    assert put.summary == {"stored": 1, "failed": 0} and put.items[0].class_key
    report = host_b.install(store=str(store), models=["mlp"])
    (item,) = report.items
    assert item.status == "installed" and item.loaded_from_cache is True and item.fallback is None
    assert item.class_key == put.items[0].class_key and report.fell_back == []
    json.dumps(report.to_xcom())
    with pytest.raises(OvcacheHookError, match="no-store"):
        host_b.install(store=str(tmp_path / "no-store"), models=["mlp"])


def test_a_release_relayed_through_object_storage_installs_and_a_flipped_object_is_refused(
    local_hosts: dict[str, Path], ovcache_conn: Callable[..., str], repo: Path, tmp_path: Path
) -> None:
    """The relay's object-storage backend, through a real ``ObjectStoragePath`` (``file://``): host a's
    set goes into a hub no host mounts and from there into host b's own store; b installs it and loads
    from its cache. A byte flipped in the hub's copy reaches host c's store as it is and c's install
    refuses it and compiles instead.
    """
    from airflow_ovcache.hooks.store_relay import LocalFiles, ObjectStorageFiles, relay_sets

    ovcache_conn("ovc_host_c", host="host-c", cache_dir=tmp_path / "cache-c", repository=repo)
    stores = {name: tmp_path / f"store-{name}" for name in ("a", "b", "c")}
    for store in stores.values():
        store.mkdir()
    hub_dir = tmp_path / "hub"
    hub = ObjectStorageFiles(f"file://{hub_dir}")
    host_a, host_b, host_c = OvcacheHook("ovc_host_a"), OvcacheHook("ovc_host_b"), OvcacheHook("ovc_host_c")
    assert host_a.warm(models=["mlp"]).summary["warmed"] == 1
    (stored,) = host_a.store_put(store=str(stores["a"])).items
    model, version, keys = stored.model, int(stored.version), [str(stored.class_key)]

    up = relay_sets(LocalFiles(), str(stores["a"]), hub, hub.root, model, version, keys)
    (name,) = up.objects
    hub_object = hub_dir / "objects" / name[:2] / f"{name}.set"
    assert hub_object.read_bytes() == (stores["a"] / "objects" / name[:2] / f"{name}.set").read_bytes()
    assert list((hub_dir / "tmp").iterdir()) == []  # every temp object was moved into place
    down = relay_sets(hub, hub.root, LocalFiles(), str(stores["b"]), model, version, keys)
    assert (down.sets, down.objects) == (up.sets, up.objects)
    (item,) = host_b.install(store=str(stores["b"]), models=["mlp"]).items
    assert item.status == "installed" and item.loaded_from_cache is True and item.fallback is None

    data = bytearray(hub_object.read_bytes())
    data[len(data) // 2] ^= 0xFF
    hub_object.write_bytes(bytes(data))
    relay_sets(hub, hub.root, LocalFiles(), str(stores["c"]), model, version, keys)
    (refused,) = host_c.install(store=str(stores["c"]), models=["mlp"]).items
    assert refused.status == "warmed" and refused.fallback and "host-c" in refused.fallback, refused
    assert "corrupt" in refused.fallback or "checksum" in refused.fallback, refused.fallback
