"""Put from one cache, install into another, on real OpenVINO compiles; every fallback says why in one line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.blobstore import DirectoryStore
from airflow_ovcache.core.manifest import Manifest
from tests.conftest import blobs_in, ovcache
from tests.core.test_warm import serving_compile


@pytest.fixture
def built(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Cache A warmed (confirmed) and put into a store; returns (cache A, store)."""
    cache_a, store = tmp_path / "cacheA", tmp_path / "store"
    store.mkdir()
    warm = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_a), "--model", "mlp", "--confirm", "--json", "-q")
    assert warm.returncode == 0, warm.stderr
    put = ovcache("store-put", "--cache-dir", str(cache_a), "--store", str(store), "--json", "-q")
    assert put.returncode == 0, put.stderr
    (item,) = put.json["result"]["items"]
    assert item["status"] == "stored" and item["class_key"].startswith("cpu-") and item["object"]
    return cache_a, store


def _install(repo: Path, cache: Path, store: Path) -> tuple[int, dict[str, Any], str]:
    run = ovcache(
        "install", "--store", str(store), "--repository", str(repo), "--cache-dir", str(cache), "--model", "mlp", "--json", "-q"
    )
    return run.returncode, run.json, run.stderr


def _objects(store: Path) -> list[Path]:
    return sorted((store / "objects").glob("*/*.set"))


def _warned(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ovcache: warning:")]


def test_install_publishes_the_stored_blob_without_compiling(built: tuple[Path, Path], repo: Path, tmp_path: Path) -> None:
    cache_a, store = built
    cache_b = tmp_path / "cacheB"
    code, env, stderr = _install(repo, cache_b, store)
    assert code == 0, stderr
    (item,) = env["result"]["items"]
    assert item["status"] == "installed", item
    assert item["compile_seconds"] is None and item["loaded_from_cache"] is True and item["fallback"] is None
    assert [b.read_bytes() for b in blobs_in(cache_b)] == [b.read_bytes() for b in blobs_in(cache_a)]
    entry = Manifest.load(cache_b / ".ovcache" / "manifest.json").select(model="mlp")[0]
    assert entry.verified and entry.blob == item["blob"]
    loaded, _ = serving_compile(repo / "mlp" / "2" / "model.xml", cache_b)
    assert loaded is True
    # Installing again changes nothing; verify agrees the installed entry is fine.
    code, env, _ = _install(repo, cache_b, store)
    assert code == 0 and env["result"]["items"][0]["status"] == "unchanged"
    verify = ovcache("verify", "--cache-dir", str(cache_b), "--json", "-q")
    assert verify.returncode == 0, verify.stdout


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_object_falls_back_to_a_compile(built: tuple[Path, Path], repo: Path, tmp_path: Path, damage: str) -> None:
    _, store = built
    (obj,) = _objects(store)
    data = bytearray(obj.read_bytes())
    if damage == "flip":
        data[-100] ^= 0x01
    else:
        data = data[: len(data) // 2]
    obj.chmod(0o644)
    obj.write_bytes(bytes(data))
    cache_b = tmp_path / "cacheB"
    code, env, stderr = _install(repo, cache_b, store)
    assert code == 0, stderr
    (item,) = env["result"]["items"]
    assert item["status"] == "warmed" and item["compile_seconds"] is not None
    assert ("checksum" in item["fallback"] or "truncated" in item["fallback"]) and "refused" in item["fallback"]
    (line,) = _warned(stderr)
    for part in ("host ", "model mlp", "version 2", "device CPU", "class cpu-"):
        assert part in line
    assert list((cache_b / ".ovcache" / "staging").iterdir()) == []


def test_another_model_mtime_falls_back_with_the_rsync_hint(built: tuple[Path, Path], repo: Path, tmp_path: Path) -> None:
    _, store = built
    model = repo / "mlp" / "2" / "model.xml"
    st = model.stat()
    os.utime(model, (st.st_atime, st.st_mtime + 120))
    code, env, stderr = _install(repo, tmp_path / "cacheB", store)
    assert code == 0, stderr
    (item,) = env["result"]["items"]
    assert item["status"] == "warmed"
    assert "model.xml has another mtime on this host: copy releases preserving mtimes (rsync -a, tar)" in item["fallback"]
    assert len(_warned(stderr)) == 1


def test_another_class_falls_back(built: tuple[Path, Path], repo: Path, tmp_path: Path) -> None:
    _, store = built
    (ref,) = (store / "sets").glob("*/*/*/*.json")
    ref.rename(ref.with_name("cpu-0000000000000000.json"))
    code, env, stderr = _install(repo, tmp_path / "cacheB", store)
    assert code == 0, stderr
    (item,) = env["result"]["items"]
    assert item["status"] == "warmed"
    assert "no set for this spec and class (it holds class cpu-0000000000000000)" in item["fallback"]


def test_an_unreachable_store_is_one_error_and_the_cache_is_untouched(built: tuple[Path, Path], repo: Path) -> None:
    cache_a, store = built
    before = {p.name: p.stat().st_mtime_ns for p in cache_a.rglob("*") if p.is_file()}
    code, env, stderr = _install(repo, cache_a, store.parent / "no-store")
    assert code == 2 and env["error"]["code"] == "store"
    errors = [line for line in stderr.splitlines() if line.startswith("ovcache: error:")]
    assert len(errors) == 1 and str(store.parent / "no-store") in errors[0]
    assert {p.name: p.stat().st_mtime_ns for p in cache_a.rglob("*") if p.is_file()} == before
    put = ovcache("store-put", "--cache-dir", str(cache_a), "--store", str(store.parent / "no-store"), "--json", "-q")
    assert put.returncode == 2 and put.json["error"]["code"] == "store"


def test_with_compile_if_unreachable_a_lost_store_makes_every_item_a_fallback(repo: Path, tmp_path: Path) -> None:
    """What a release task asks for: the host compiles what it would have compiled without a store, saying why."""
    missing = tmp_path / "no-store"
    run = ovcache(
        "install", "--store", str(missing), "--repository", str(repo), "--cache-dir", str(tmp_path / "c"),
        "--model", "mlp", "--compile-if-unreachable", "--json", "-q",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    items = run.json["result"]["items"]
    assert items and all(i["status"] == "warmed" for i in items)
    for item in items:
        assert f"blob store {missing} is unreachable" in item["fallback"] and "compiled here instead" in item["fallback"]
    assert run.json["result"]["summary"]["installed"] == 0 and run.json["result"]["store"] == str(missing)


def test_a_set_whose_metadata_names_another_class_falls_back(built: tuple[Path, Path], repo: Path, tmp_path: Path) -> None:
    _, store_dir = built
    store = DirectoryStore(store_dir)
    (stored,) = store.list()
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    got = store.get(stored.key, fetched)
    assert got is not None
    meta = {k: v for k, v in got.meta.items() if k not in ("key", "blobs")}
    meta["class_key"] = "cpu-0000000000000000"  # a builder that claimed this host's class but is another
    store.put(stored.key, meta, [(fetched / r["name"], r["checksum"]) for r in got.meta["blobs"]])
    code, env, stderr = _install(repo, tmp_path / "cacheB", store_dir)
    assert code == 0, stderr
    (item,) = env["result"]["items"]
    assert item["status"] == "warmed"
    assert (
        f"the set was built for class cpu-0000000000000000, this host's device is class {item['class_key']}" in item["fallback"]
    )


def test_a_failed_install_keeps_what_was_cached(built: tuple[Path, Path], repo: Path, tmp_path: Path) -> None:
    _, store = built
    cache_b = tmp_path / "cacheB"
    warm = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_b), "--model", "mlp", "--version-number", "1", "-q"
    )
    assert warm.returncode == 0, warm.stderr
    (kept,) = blobs_in(cache_b)
    (obj,) = _objects(store)
    obj.chmod(0o644)
    obj.write_bytes(obj.read_bytes()[:100])
    code, env, _ = _install(repo, cache_b, store)
    assert code == 0 and env["result"]["items"][0]["status"] == "warmed"
    assert kept.exists()
    assert {e.version for e in Manifest.load(cache_b / ".ovcache" / "manifest.json").select(model="mlp")} == {1, 2}


def test_four_concurrent_puts_of_one_entry_leave_one_valid_object(built: tuple[Path, Path], tmp_path: Path) -> None:
    cache_a, _ = built
    store = tmp_path / "store4"
    store.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "airflow_ovcache.cli.main",
        "store-put",
        "--cache-dir",
        str(cache_a),
        "--store",
        str(store),
        "-q",
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(4)]
    assert [p.wait(timeout=240) for p in procs] == [0, 0, 0, 0]
    (obj,) = _objects(store)
    assert len(list((store / "sets").glob("*/*/*/*.json"))) == 1
    assert list((store / "tmp").iterdir()) == []
    assert hashlib.sha256(obj.read_bytes()).hexdigest() == obj.stem


def test_store_prune_keeps_the_versions_the_policy_serves(built: tuple[Path, Path]) -> None:
    _, store = built
    dry = ovcache("store-prune", "--store", str(store), "--keep", "specific:1", "--dry-run", "--json", "-q")
    assert dry.returncode == 0, dry.stderr
    assert [(s["model"], s["version"]) for s in dry.json["result"]["removed"]] == [("mlp", 2)]
    assert len(_objects(store)) == 1 and list((store / "sets").glob("*/*/*/*.json"))
    kept = ovcache("store-prune", "--store", str(store), "--keep", "latest:1", "--json", "-q")
    assert kept.returncode == 0 and kept.json["result"]["removed"] == [] and len(kept.json["result"]["kept"]) == 1
