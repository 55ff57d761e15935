"""``OvcacheHook.store_put`` and ``install`` over the local transport: host a compiles and puts, host b installs."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    from airflow_ovcache.hooks.store_relay import LocalFiles, ObjectStorageFiles, RelayError, relay_sets

    ovcache_conn("ovc_host_c", host="host-c", cache_dir=tmp_path / "cache-c", repository=repo)
    stores = {name: tmp_path / f"store-{name}" for name in ("a", "b", "c")}
    for store in stores.values():
        store.mkdir()
    hub_dir = tmp_path / "hub"
    hub = ObjectStorageFiles(f"file://{hub_dir}")
    with pytest.raises(RelayError, match=r"hub file://.*/hub: does not exist \(create it, or fix store_hub\)"):
        relay_sets(LocalFiles(), str(stores["a"]), hub, hub.root, "mlp", 1, ["cpu-x"])
    hub_dir.mkdir()  # a file:// hub is a directory that must exist, as a bucket must
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


def test_a_hub_is_pruned_by_class_and_policy_and_keeps_what_any_set_names(s3_standin: Any) -> None:
    """``prune_hub`` on the S3 stand-in: class a keeps its latest version; class b's sets and objects are its own.

    Objects are random bytes named by their SHA-256, refs name them, as a relay leaves them. An
    object no ref names is removed only once it is older than ``min_age``.
    """
    from airflow_ovcache.core.policy import VersionPolicy
    from airflow_ovcache.hooks.store_relay import ObjectStorageFiles, prune_hub

    hub = ObjectStorageFiles(f"s3://{s3_standin.bucket}/fleet", conn_id=s3_standin.conn_id)
    objects = {}
    for version, class_key in ((1, "cpu-a"), (2, "cpu-a"), (1, "cpu-b")):
        data = os.urandom(1024)
        digest = hashlib.sha256(data).hexdigest()
        objects[(version, class_key)] = digest
        for path, body in (
            (f"{hub.root}/objects/{digest[:2]}/{digest}.set", data),
            (f"{hub.root}/sets/m/{version}/spec1/{class_key}.json", json.dumps({"object": digest}).encode()),
        ):
            with hub.open_write(path) as handle:
                handle.write(body)

    young = prune_hub(hub, "m", ["cpu-a"], VersionPolicy.parse("latest:1"))
    assert (young.sets, young.objects, young.kept) == (["m/1/spec1/cpu-a"], [], [2])  # v1's object is too young to go
    old = prune_hub(hub, "m", ["cpu-a"], VersionPolicy.parse("latest:1"), min_age=0)
    assert (old.sets, old.objects) == ([], [objects[(1, "cpu-a")]])
    left = sorted(key.removeprefix("fleet/") for key in s3_standin.objects("fleet/"))
    assert left == sorted(
        [f"objects/{d[:2]}/{d}.set" for k, d in objects.items() if k != (1, "cpu-a")]
        + ["sets/m/2/spec1/cpu-a.json", "sets/m/1/spec1/cpu-b.json"]
    )
