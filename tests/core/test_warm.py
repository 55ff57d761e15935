"""Warm-up on real OpenVINO compiles of small models."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.devices import DeviceInfo
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.core.repository import ModelRepository
from airflow_ovcache.core.spec import CacheSpec
from airflow_ovcache.core.warm import Warmer
from airflow_ovcache.protocol.location import Location
from tests.conftest import blobs_in


def _warm(repo: Path, cache_dir: Path, model: str = "mlp", version: int = 1, spec: CacheSpec | None = None, **kw):  # type: ignore[no-untyped-def]
    r = ModelRepository(repo)
    cache = CacheDir(cache_dir).check(create=True, writable=True)
    warmer = Warmer(cache, repository_root=r.root, **kw)
    try:
        return warmer.warm(r.version(model, version), spec or CacheSpec.make())
    finally:
        warmer.close()


def serving_compile(
    model_path: Path, cache_dir: Path, spec: dict[str, str] | None = None, by_model: bool = False
) -> tuple[bool, list[float]]:
    """Compile in a fresh process exactly as a server would; returns LOADED_FROM_CACHE and the output."""
    code = f"""
import json, numpy as np, openvino as ov
core = ov.Core()
cfg = {{"CACHE_DIR": {str(cache_dir)!r}, **{spec or {}!r}}}
src = core.read_model({str(model_path)!r}) if {by_model!r} else {str(model_path)!r}
cm = core.compile_model(src, "CPU", cfg)
x = np.linspace(-1, 1, cm.inputs[0].get_partial_shape()[1].get_length(), dtype=np.float32)[None, :]
out = cm.create_infer_request().infer({{0: x}})[cm.outputs[0]]
print(json.dumps([bool(cm.get_property("LOADED_FROM_CACHE")), [float(v) for v in out.ravel()[:16]]]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, out = __import__("json").loads(proc.stdout.strip().splitlines()[-1])
    return loaded, out


def test_warm_publishes_the_blob_the_server_loads(repo: Path, cache_dir: Path) -> None:
    result = _warm(repo, cache_dir, confirm=True)
    assert result.status == "warmed", result.reason
    assert result.loaded_from_cache is True and result.load_ms is not None
    (blob,) = blobs_in(cache_dir)
    assert blob.name == result.blob
    assert oct(blob.stat().st_mode & 0o777) == oct(0o400)  # read-only and private (no serving group)
    assert list((cache_dir / ".ovcache" / "staging").iterdir()) == []
    entry = Manifest.load(cache_dir / ".ovcache" / "manifest.json").select(model="mlp")[0]
    assert entry.blob == blob.name and entry.size == blob.stat().st_size
    assert entry.runtime and entry.isa and entry.verified and entry.checksum.startswith("blake3:")
    loaded, _ = serving_compile(repo / "mlp" / "1" / "model.xml", cache_dir)
    assert loaded is True


def test_unchanged_model_is_a_no_op(repo: Path, cache_dir: Path) -> None:
    first = _warm(repo, cache_dir)
    manifest_before = (cache_dir / ".ovcache" / "manifest.json").read_bytes()
    blob_stat = os.stat(cache_dir / first.blob)
    again = _warm(repo, cache_dir)
    assert again.status == "unchanged" and again.compile_seconds is None
    assert (cache_dir / ".ovcache" / "manifest.json").read_bytes() == manifest_before
    assert os.stat(cache_dir / first.blob).st_ino == blob_stat.st_ino


def test_no_op_warm_does_not_import_openvino(repo: Path, cache_dir: Path) -> None:
    _warm(repo, cache_dir)
    code = f"""
import sys
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.repository import ModelRepository
from airflow_ovcache.core.spec import CacheSpec
from airflow_ovcache.core.warm import Warmer
r = ModelRepository({str(repo)!r})
w = Warmer(CacheDir({str(cache_dir)!r}).check(create=False, writable=True), repository_root=r.root)
res = w.warm(r.version("mlp", 1), CacheSpec.make())
print(res.status, "openvino" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["unchanged", "False"]


def test_force_recompiles(repo: Path, cache_dir: Path) -> None:
    _warm(repo, cache_dir)
    assert _warm(repo, cache_dir, force=True).status == "warmed"
    assert len(blobs_in(cache_dir)) == 1


def test_touched_model_file_is_rewarmed(repo: Path, cache_dir: Path) -> None:
    """Same bytes, new mtime: OpenVINO rejects the blob (its file_info holds the mtime), so must we."""
    _warm(repo, cache_dir)
    xml = repo / "mlp" / "1" / "model.xml"
    st = xml.stat()
    os.utime(xml, (st.st_atime, st.st_mtime + 10))
    probe = cache_dir.parent / "probe"
    probe.mkdir()
    for blob in blobs_in(cache_dir):
        shutil.copy2(blob, probe / blob.name)
    assert serving_compile(xml, probe)[0] is False  # OpenVINO itself no longer accepts the blob
    res = _warm(repo, cache_dir)
    assert res.status == "warmed" and "timestamp" in res.reason
    assert serving_compile(xml, cache_dir)[0] is True


def test_by_model_and_by_path_blobs_differ_and_both_serve(repo: Path, cache_dir: Path) -> None:
    by_path = _warm(repo, cache_dir)
    by_model = _warm(repo, cache_dir, spec=CacheSpec.make(compile_mode="model"), confirm=True)
    assert by_model.status == "warmed" and by_model.loaded_from_cache
    assert by_model.blob != by_path.blob
    assert serving_compile(repo / "mlp" / "1" / "model.xml", cache_dir, by_model=True)[0] is True


def test_optimize_size_on_ir_makes_a_small_blob_that_serves(repo: Path, cache_dir: Path) -> None:
    full = _warm(repo, cache_dir / "speed")
    small = _warm(repo, cache_dir / "size", spec=CacheSpec.make(cache_mode="OPTIMIZE_SIZE"), confirm=True)
    assert small.status == "warmed" and small.loaded_from_cache is True
    assert small.size is not None and full.size is not None and small.size < full.size / 10
    assert serving_compile(repo / "mlp" / "1" / "model.xml", cache_dir / "size", {"CACHE_MODE": "OPTIMIZE_SIZE"})[0]


def test_onnx_warms_by_path(repo: Path, cache_dir: Path) -> None:
    res = _warm(repo, cache_dir, model="tiny", confirm=True)
    assert res.status == "warmed" and res.loaded_from_cache is True


def test_onnx_with_optimize_size_is_refused_before_compiling(repo: Path, cache_dir: Path) -> None:
    res = _warm(repo, cache_dir, model="tiny", spec=CacheSpec.make(cache_mode="OPTIMIZE_SIZE"))
    assert res.status == "failed"
    assert "never hits for ONNX" in res.reason and "model tiny" in res.reason and "device CPU" in res.reason
    assert not cache_dir.exists() or blobs_in(cache_dir) == []


def test_cpu_hints_share_one_blob(repo: Path, cache_dir: Path) -> None:
    """On CPU, PERFORMANCE_HINT does not change the blob name: two specs, one blob, both recorded."""
    a = _warm(repo, cache_dir, spec=CacheSpec.make(properties={"PERFORMANCE_HINT": "LATENCY"}))
    b = _warm(repo, cache_dir, spec=CacheSpec.make(properties={"PERFORMANCE_HINT": "THROUGHPUT"}))
    assert a.blob == b.blob and a.spec_id != b.spec_id
    m = Manifest.load(cache_dir / ".ovcache" / "manifest.json")
    assert {e.checksum for e in m.entries.values()} == {m.entries[next(iter(m.entries))].checksum}


def test_conflicting_cache_modes_on_one_blob_are_refused(repo: Path, cache_dir: Path) -> None:
    _warm(repo, cache_dir)
    res = _warm(repo, cache_dir, spec=CacheSpec.make(cache_mode="OPTIMIZE_SIZE"))
    assert res.status == "failed" and res.error and res.error["code"] == "spec-conflict"


def test_encrypted_warm_serves_with_the_key(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)  # a key file others can read is refused
    res = _warm(repo, cache_dir, spec=CacheSpec.make(encryption_key_file=str(key)), confirm=True)
    assert res.status == "warmed" and res.loaded_from_cache is True
    entry = Manifest.load(cache_dir / ".ovcache" / "manifest.json").select()[0]
    assert entry.key_id and key.read_bytes().hex() not in (cache_dir / ".ovcache" / "manifest.json").read_text()


# -- failures a user can act on ------------------------------------------------------------------


def test_unknown_device(repo: Path, cache_dir: Path) -> None:
    res = _warm(repo, cache_dir, spec=CacheSpec.make(device="XPU"))
    assert res.status == "failed" and res.error and res.error["code"] == "unknown-device"
    assert "device XPU" in res.reason and "model mlp" in res.reason and "version 1" in res.reason


def test_unknown_property(repo: Path, cache_dir: Path) -> None:
    res = _warm(repo, cache_dir, spec=CacheSpec.make(properties={"NOT_A_PROPERTY": "1"}))
    assert res.status == "failed" and res.error and res.error["code"] == "unknown-property"
    assert "NOT_A_PROPERTY" in res.reason


def test_model_openvino_cannot_read(repo: Path, cache_dir: Path) -> None:
    bad = repo / "broken" / "1"
    bad.mkdir(parents=True)
    (bad / "model.onnx").write_bytes(b"this is not onnx" * 20)
    res = _warm(repo, cache_dir, model="broken")
    assert res.status == "failed" and res.error and res.error["code"] == "model-unreadable"
    assert "\n" not in res.reason and "model broken" in res.reason


def _no_export_import(device: str, core: object, where: Location) -> DeviceInfo:
    # A mock, because this machine has no device without EXPORT_IMPORT (its CPU can cache):
    # the CPU is described as such a device, and the compile itself is real.
    return DeviceInfo(device, "test device without EXPORT_IMPORT", None, None, ["FP32"], False, {})


def test_device_that_cannot_cache_fails_or_skips_by_policy(repo: Path, cache_dir: Path) -> None:
    failed = _warm(repo, cache_dir, describe_device=_no_export_import)
    assert failed.status == "failed" and failed.error and failed.error["code"] == "device-cannot-cache"
    assert "EXPORT_IMPORT" in failed.reason
    skipped = _warm(repo, cache_dir, describe_device=_no_export_import, on_no_cache="skip")
    assert skipped.status == "skipped" and skipped.ok
    assert blobs_in(cache_dir) == []


def test_serving_compile_gives_the_same_output_as_no_cache(repo: Path, cache_dir: Path) -> None:
    _warm(repo, cache_dir)
    loaded, cached = serving_compile(repo / "mlp" / "1" / "model.xml", cache_dir)
    _, fresh = serving_compile(repo / "mlp" / "1" / "model.xml", cache_dir / "fresh")
    assert loaded and np.allclose(cached, fresh, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("name", ["../mlp", "mlp/1", "/etc"])
def test_names_with_separators_are_rejected(repo: Path, name: str) -> None:
    from airflow_ovcache.core.errors import InvalidName

    with pytest.raises(InvalidName):
        ModelRepository(repo).version(name, 1)
