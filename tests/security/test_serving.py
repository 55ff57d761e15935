"""The serving-side check: a blob is loaded only if it is the one the manifest vouches for.

Real warm-ups by the agent, real compiles in the "server" (this test process).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from airflow_ovcache.core.errors import IntegrityError
from airflow_ovcache.serving import compile_model_checked, load_checked
from tests.conftest import blobs_in, ovcache, require, usable_by_others
from tests.security.conftest import make_key_file


def _snapshot(cache: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes()) for p in blobs_in(cache)}


def _atime_is_kept(path: Path) -> bool:
    real, best, options = os.path.realpath(path), "", ""
    with open("/proc/mounts") as handle:
        for line in handle:
            parts = line.split()
            mount = parts[1]
            if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best):
                best, options = mount, parts[3]
    return "noatime" not in options.split(",")


@pytest.fixture
def warmed(repo: Path, cache_dir: Path) -> Path:
    run = ovcache(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
        "--model",
        "mlp",
        "--property",
        "PERFORMANCE_HINT=LATENCY",
    )
    assert run.returncode == 0, run.stderr
    return repo / "mlp" / "2" / "model.xml"


def _core():  # type: ignore[no-untyped-def]
    import openvino as ov

    return ov.Core()


def _outputs(compiled) -> np.ndarray:  # type: ignore[no-untyped-def]
    x = (
        np.random.default_rng(0)
        .standard_normal([d.get_length() for d in compiled.inputs[0].get_partial_shape()])
        .astype(np.float32)
    )
    return compiled.create_infer_request().infer({0: x})[compiled.outputs[0]]


def test_a_warmed_blob_is_checked_and_imported_from_private_memory(warmed: Path, cache_dir: Path, tmp_path: Path) -> None:
    import openvino.properties.hint as hints

    before = _snapshot(cache_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": hints.PerformanceMode.LATENCY}
    result = load_checked(_core(), warmed, "CPU", config, scratch_dir=scratch)
    assert result.loaded_from_cache is True and result.fallback_reason is None and result.isolation == "memory"
    assert (result.model, result.version, result.device) == ("mlp", 2, "CPU")
    assert result.check_ms > 0 and result.blob == next(iter(before))
    fresh = _core().compile_model(str(warmed), "CPU")
    assert np.allclose(_outputs(result.compiled), _outputs(fresh), rtol=1e-3, atol=1e-5)
    assert _snapshot(cache_dir) == before  # the shared directory is only ever read
    assert list(scratch.iterdir()) == []  # nothing was written anywhere
    # OpenVINO reports LOADED_FROM_CACHE only for loads through its own cache manager; an import is not one.
    # ServingLoad.loaded_from_cache is the honest answer, and is what the test above checked.
    assert result.compiled.get_property("LOADED_FROM_CACHE") is False
    # the drop-in form returns the compiled model itself
    compiled = compile_model_checked(_core(), warmed, "CPU", config)
    assert np.allclose(_outputs(compiled), _outputs(fresh), rtol=1e-3, atol=1e-5)


def test_the_import_gets_the_properties_a_cached_compile_gets(warmed: Path, cache_dir: Path, tmp_path: Path) -> None:
    """The plugin must see the same execution properties as when OpenVINO's cache manager imports the blob."""
    plain_dir = tmp_path / "plain-copy"
    shutil.copytree(cache_dir, plain_dir)
    config = {"CACHE_DIR": str(plain_dir), "PERFORMANCE_HINT": "LATENCY"}
    plain = _core().compile_model(str(warmed), "CPU", config)
    assert plain.get_property("LOADED_FROM_CACHE") is True
    checked = load_checked(_core(), warmed, "CPU", {**config, "CACHE_DIR": str(cache_dir)}).compiled
    for name in ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "EXECUTION_MODE_HINT"):
        assert str(checked.get_property(name)) == str(plain.get_property(name)), name


def test_the_copy_isolation_loads_through_openvinos_cache_from_a_private_folder(
    warmed: Path, cache_dir: Path, tmp_path: Path
) -> None:
    before = _snapshot(cache_dir)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    result = load_checked(_core(), warmed, "CPU", config, isolation="copy", scratch_dir=scratch)
    assert result.loaded_from_cache is True and result.isolation == "copy"
    assert result.compiled.get_property("LOADED_FROM_CACHE") is True
    assert _snapshot(cache_dir) == before and list(scratch.iterdir()) == []


def test_a_blob_changed_after_the_check_is_not_what_openvino_loads(
    warmed: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The owner rewrites the shared blob in place between the check and the import: the import must not see it."""
    from airflow_ovcache import serving

    (blob,) = blobs_in(cache_dir)
    original = serving._import_verified

    def rewrite_then_import(*args, **kwargs):  # type: ignore[no-untyped-def]
        os.chmod(blob, 0o600)
        with open(blob, "r+b") as handle:  # same inode, same size, other bytes
            handle.write(b"\0" * blob.stat().st_size)
        os.chmod(blob, 0o400)
        return original(*args, **kwargs)

    monkeypatch.setattr(serving, "_import_verified", rewrite_then_import)
    result = load_checked(_core(), warmed, "CPU", {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"})
    assert set(blob.read_bytes()) == {0}  # the file on disk is garbage now...
    fresh = _core().compile_model(str(warmed), "CPU")
    assert result.loaded_from_cache is True  # ...and what was loaded is the checked blob
    assert np.allclose(_outputs(result.compiled), _outputs(fresh), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_the_cpu_plugin_keeps_no_reference_to_the_imported_bytes(kind: str, tmp_path: Path) -> None:
    """The helper releases the verified bytes after the import; that is only safe while the plugin copies them.

    Overwrite the memory handed to ``import_model`` and infer: a plugin that
    still read it would give other outputs (or crash once the helper unmaps it).
    """
    import mmap

    import openvino as ov

    from airflow_ovcache.samples import build_ir, build_transformer

    model = tmp_path / "m" / "model.xml"
    if kind == "mlp":
        build_ir(model, size_mb=2.0, seed=5)
    else:
        build_transformer(model, layers=2, width=64, seq=16, seed=5)
    core = ov.Core()
    cache = tmp_path / "cache"
    reference = core.compile_model(str(model), "CPU", {"CACHE_DIR": str(cache)})
    (blob,) = blobs_in(cache)
    data = blob.read_bytes()
    memory = mmap.mmap(-1, len(data), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    memory[:] = data
    body = np.frombuffer(memory, dtype=np.uint8)[data.index(b"\n") + 1 :]
    imported = core.import_model(ov.Tensor(body, shared_memory=True), "CPU", {})
    body[:] = 0x7F
    assert np.array_equal(_outputs(imported), _outputs(reference))


def test_a_serving_read_counts_in_the_blobs_access_time(warmed: Path, cache_dir: Path) -> None:
    """The agent's evidence that a server read a blob is its atime: the checked load must leave it."""
    require(_atime_is_kept(cache_dir), "the cache's filesystem is mounted noatime")
    (blob,) = blobs_in(cache_dir)
    st = blob.stat()
    os.utime(blob, ns=(st.st_mtime_ns - 10_000_000_000, st.st_mtime_ns))  # atime older than mtime: relatime updates it
    load_checked(_core(), warmed, "CPU", {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"})
    assert blob.stat().st_atime_ns > st.st_mtime_ns - 10_000_000_000


def test_a_tampered_blob_is_refused_or_bypassed_never_loaded(warmed: Path, cache_dir: Path) -> None:
    (blob,) = blobs_in(cache_dir)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte of compiled code changed
    os.chmod(blob, 0o600)
    blob.write_bytes(bytes(data))
    os.chmod(blob, 0o400)
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "checksum"
    text = str(err.value)
    assert "model mlp" in text and "version 2" in text and "device CPU" in text and "host " in text
    tampered = _snapshot(cache_dir)
    result = load_checked(_core(), warmed, "CPU", config, fallback="fresh")
    assert result.loaded_from_cache is False and result.fallback_reason == "checksum"
    assert result.compiled.get_property("LOADED_FROM_CACHE") is False
    assert _snapshot(cache_dir) == tampered  # a fresh compile never rewrites the shared blob


def test_stale_models_are_refused(warmed: Path, cache_dir: Path) -> None:
    from airflow_ovcache.samples import swap_weights_in_place

    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    stat = warmed.stat()
    os.utime(warmed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "stale-model" and "timestamp" in str(err.value)
    os.utime(warmed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    swap_weights_in_place(warmed.with_suffix(".bin"), seed=99)  # same size: OpenVINO itself would serve the old weights
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "stale-model" and "old model" in str(err.value)


def test_another_call_or_no_warm_up_is_not_warmed(warmed: Path, cache_dir: Path, repo: Path) -> None:
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "THROUGHPUT"})
    assert err.value.reason == "not-warmed" and "for another call" in str(err.value)
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), repo / "mlp" / "1" / "model.xml", "CPU", {"CACHE_DIR": str(cache_dir)})
    assert err.value.reason == "not-warmed" and "version 1" in str(err.value)


def test_encrypted_caches_need_the_right_key(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    key = make_key_file(tmp_path / "k")
    assert (
        ovcache(
            "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--encryption-key-file", str(key)
        ).returncode
        == 0
    )
    model = repo / "mlp" / "2" / "model.xml"
    before = _snapshot(cache_dir)
    good = load_checked(_core(), model, "CPU", {"CACHE_DIR": str(cache_dir)}, encryption_key_file=key)
    assert good.loaded_from_cache is True
    assert load_checked(
        _core(), model, "CPU", {"CACHE_DIR": str(cache_dir)}, encryption_key=key.read_bytes().hex()
    ).loaded_from_cache
    for kwargs in ({"encryption_key": os.urandom(32)}, {}):
        with pytest.raises(IntegrityError) as err:
            compile_model_checked(_core(), model, "CPU", {"CACHE_DIR": str(cache_dir)}, **kwargs)
        assert err.value.reason == "key-mismatch"
    bypass = load_checked(_core(), model, "CPU", {"CACHE_DIR": str(cache_dir)}, encryption_key=os.urandom(32), fallback="fresh")
    assert bypass.fallback_reason == "key-mismatch" and bypass.loaded_from_cache is False
    assert _snapshot(cache_dir) == before  # unlike plain OpenVINO with a wrong key, nothing was rewritten


def test_a_weightless_blob_is_imported_with_the_weights_it_was_built_from(repo: Path, cache_dir: Path) -> None:
    from airflow_ovcache.samples import swap_weights_in_place

    run = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--cache-mode", "OPTIMIZE_SIZE"
    )
    assert run.returncode == 0, run.stderr
    model = repo / "mlp" / "2" / "model.xml"
    (blob,) = blobs_in(cache_dir)
    assert blob.stat().st_size < model.with_suffix(".bin").stat().st_size // 4  # it really is weightless
    config = {"CACHE_DIR": str(cache_dir), "CACHE_MODE": "OPTIMIZE_SIZE"}
    result = load_checked(_core(), model, "CPU", config)
    assert result.loaded_from_cache is True and result.isolation == "memory"
    fresh = _core().compile_model(str(model), "CPU")
    assert np.allclose(_outputs(result.compiled), _outputs(fresh), rtol=1e-3, atol=1e-5)
    swap_weights_in_place(model.with_suffix(".bin"), seed=7)  # the weights it would read back are no longer the warm-up's
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), model, "CPU", config)
    assert err.value.reason == "stale-model"


def test_an_unsafe_cache_dir_or_a_corrupt_manifest_is_refused(warmed: Path, cache_dir: Path) -> None:
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    os.chmod(cache_dir, 0o777)
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "unsafe-cache-dir"
    os.chmod(cache_dir, 0o700)
    manifest = cache_dir / ".ovcache" / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"version":2', '"version":3'))
    with pytest.raises(IntegrityError) as err:
        compile_model_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "manifest"
    assert load_checked(_core(), warmed, "CPU", config, fallback="fresh").fallback_reason == "manifest"


def test_the_link_isolation_gives_the_same_guarantee_without_a_copy(warmed: Path, cache_dir: Path, tmp_path: Path) -> None:
    scratch = cache_dir.parent / "serve-scratch"  # same filesystem as the cache
    scratch.mkdir()
    result = load_checked(
        _core(),
        warmed,
        "CPU",
        {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"},
        isolation="link",
        scratch_dir=scratch,
    )
    assert result.loaded_from_cache is True and list(scratch.iterdir()) == []
    (blob,) = blobs_in(cache_dir)
    assert blob.stat().st_nlink == 1


def test_the_helper_imports_no_airflow_and_nothing_heavy() -> None:
    """A server pays the helper's import on every start: it must not pull in what only some loads need."""
    heavy = ("airflow", "openvino", "numpy", "blake3", "cryptography", "logging", "tempfile", "shutil", "socket", "json")
    code = f"import sys, airflow_ovcache.serving; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.root
def test_a_serving_user_in_the_group_loads_what_the_agent_warmed(repo: Path, model_templates: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root and runuser to act as nobody")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ovcache-serve-"))
    try:
        os.chmod(base, 0o755)
        models = base / "models"
        shutil.copytree(model_templates / "ir" / "1", models / "mlp" / "1")
        for dirpath, dirnames, filenames in os.walk(models):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
            for f in filenames:
                os.chmod(os.path.join(dirpath, f), 0o644)
        cache = base / "cache"
        assert ovcache("warm", "--repository", str(models), "--cache-dir", str(cache), "--group", "65534").returncode == 0
        code = (
            "import openvino as ov, sys; from airflow_ovcache.serving import load_checked; "
            f"r = load_checked(ov.Core(), {str(models / 'mlp' / '1' / 'model.xml')!r}, 'CPU', {{'CACHE_DIR': {str(cache)!r}}}, trusted_owners={{0}}); "
            "print(r.loaded_from_cache, r.fallback_reason)"
        )
        with usable_by_others():
            proc = subprocess.run(
                ["runuser", "-u", "nobody", "--", sys.executable, "-c", code],
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parents[2],
                env={**os.environ, "HOME": "/tmp"},
            )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["True", "None"]
    finally:
        shutil.rmtree(base)


def test_the_check_costs_milliseconds_for_a_few_mb_model(warmed: Path, cache_dir: Path) -> None:
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    load_checked(_core(), warmed, "CPU", config)  # warm the page cache and the imports
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        result = load_checked(_core(), warmed, "CPU", config)
        times.append((result.check_ms, (time.perf_counter() - t0) * 1000))
    check_ms = sorted(t[0] for t in times)[2]
    print(f"serving check of a {warmed.with_suffix('.bin').stat().st_size / 1e6:.1f} MB model: median {check_ms:.1f} ms")
    assert check_ms < 500


def test_the_threaded_read_and_hash_of_a_large_blob_check_the_same(
    warmed: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large blobs are read by several threads and hashed by several: same acceptance, same refusal."""
    from airflow_ovcache import serving

    monkeypatch.setattr(serving, "_PARALLEL_READ_MIN", 1)
    monkeypatch.setattr(serving, "_THREADED_HASH_MIN", 1)
    config = {"CACHE_DIR": str(cache_dir), "PERFORMANCE_HINT": "LATENCY"}
    assert load_checked(_core(), warmed, "CPU", config).loaded_from_cache is True
    (blob,) = blobs_in(cache_dir)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01  # the last byte: read by the last slice
    os.chmod(blob, 0o600)
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        load_checked(_core(), warmed, "CPU", config)
    assert err.value.reason == "checksum"


def test_the_body_starts_after_the_header_and_its_announced_padding() -> None:
    """OpenVINO pads the header line to ``header_size_alignment``; the plugin's part starts after the padding."""
    from types import SimpleNamespace

    from airflow_ovcache import serving
    from airflow_ovcache.protocol.location import Location

    line = b'<?xml version="1.0"?><compiled_blob ie_version="v1" file_info="1" runtime_info="{OV_VERSION:v1}" header_size_alignment="64"/>\n'
    padded = (len(line) + 63) // 64 * 64
    entry = SimpleNamespace(runtime="v1")
    where = Location("host", "m", 1, "CPU")
    assert serving._body_offset(line + b"\0" * (padded - len(line)) + b"body", entry, where) == padded  # type: ignore[arg-type]
    plain = line.replace(b'header_size_alignment="64"', b'header_size_alignment="0"')
    assert serving._body_offset(plain + b"body", entry, where) == len(plain)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError) as err:
        serving._body_offset(plain.replace(b"v1", b"v0"), entry, where)  # type: ignore[arg-type]
    assert err.value.reason == "runtime-mismatch"


def test_errors_name_the_host_as_the_agent_does(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_ovcache import serving
    from airflow_ovcache.core.errors import this_host

    assert serving._host() == this_host()
    monkeypatch.setenv("OVCACHE_HOST", "infer-03")
    assert serving._host() == this_host() == "infer-03"
