from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_ovcache.core.blobfile import BlobHeaderError, is_blob_name, parse_header, read_header
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.errors import InvalidName, ManifestCorrupt
from airflow_ovcache.core.fingerprint import Fingerprinter, StatCache
from airflow_ovcache.core.manifest import Entry, Manifest
from airflow_ovcache.samples import swap_weights_in_place


def test_fingerprint_sees_a_same_size_weight_swap(repo: Path, tmp_path: Path) -> None:
    version = repo / "mlp" / "1"
    before = Fingerprinter().fingerprint(version)
    size = (version / "model.bin").stat().st_size
    swap_weights_in_place(version / "model.bin", seed=99)
    assert (version / "model.bin").stat().st_size == size
    after = Fingerprinter().fingerprint(version)
    assert after.digest != before.digest
    assert after.size == before.size and after.files == before.files == 2


def test_stat_cache_skips_unchanged_files_and_persists(repo: Path, tmp_path: Path) -> None:
    version = repo / "mlp" / "1"
    path = tmp_path / "stat.json"
    first = Fingerprinter(StatCache.load(path, racy_seconds=0))
    digest = first.fingerprint(version).digest
    assert first.stats.files_hashed == 2 and first.stats.bytes_hashed > 2_000_000
    first.cache.save()
    second = Fingerprinter(StatCache.load(path, racy_seconds=0))
    assert second.fingerprint(version).digest == digest
    assert second.stats.files_hashed == 0 and second.stats.files_from_cache == 2


def test_restored_mtime_does_not_fool_the_stat_cache(repo: Path) -> None:
    """``touch -r`` puts back an old mtime but cannot put back ctime."""
    version = repo / "mlp" / "1"
    fp = Fingerprinter(StatCache(racy_seconds=0))
    digest = fp.fingerprint(version).digest
    weights = version / "model.bin"
    st = weights.stat()
    swap_weights_in_place(weights, seed=5)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_mtime_ns == st.st_mtime_ns
    assert fp.fingerprint(version).digest != digest


def test_recently_modified_files_are_not_remembered(repo: Path) -> None:
    fp = Fingerprinter()
    fp.fingerprint(repo / "mlp" / "1")  # files were just copied: racy
    assert fp.cache.entries == {}


def test_symlink_out_of_repository_is_refused(repo: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"x" * 10)
    os.symlink(secret, repo / "mlp" / "1" / "extra.bin")
    with pytest.raises(InvalidName, match="links out"):
        Fingerprinter().fingerprint(repo / "mlp" / "1", boundary=repo)


def test_symlink_inside_repository_is_followed(repo: Path) -> None:
    os.symlink(repo / "mlp" / "2" / "model.bin", repo / "mlp" / "1" / "shared.bin")
    fp = Fingerprinter().fingerprint(repo / "mlp" / "1", boundary=repo)
    assert fp.files == 3


# -- blob headers ------------------------------------------------------------------------------

HEADER = (
    b'<?xml version="1.0"?><compiled_blob ie_version="2026.4.1-1-abc" file_info="123" '
    b'runtime_info="{OV_VERSION:2026.4.1-1-abc}" header_size_alignment="0"/>\n'
)


def test_header_parses_runtime_and_isa() -> None:
    meta = b"meta=1.0;ov=2026.4.1;isa=Intel AVX2"
    body = b"RR_UPCVO\x01\x00\x00\x00" + len(meta).to_bytes(8, "little") + meta + (48).to_bytes(8, "little")
    header = parse_header(HEADER + body)
    assert header.runtime_version == "2026.4.1-1-abc"
    assert header.ov_meta == "2026.4.1"
    assert header.isa == "Intel AVX2"  # trailing digits belong to the ISA name, not to the next field


@pytest.mark.parametrize("data", [b"", b"garbage without newline", b"<?xml?><other/>\n", HEADER[:40], b"\x00" * 100 + b"\n"])
def test_header_rejects_non_blobs(data: bytes) -> None:
    with pytest.raises(BlobHeaderError):
        parse_header(data)


def test_blob_names() -> None:
    assert is_blob_name("14057126013058956875.blob")
    assert not is_blob_name("../1.blob")
    assert not is_blob_name("x.blob")
    assert not is_blob_name("123.blob.tmp")


# -- manifest ----------------------------------------------------------------------------------


def _entry(**kw: object) -> Entry:
    base: dict[str, object] = dict(
        model="m",
        version=1,
        device="CPU",
        spec_id="abc",
        spec={"device": "CPU"},
        model_path="/r/m/1/model.xml",
        model_dir="/r/m/1",
        fingerprint="blake3:00",
        blob="1.blob",
        size=10,
        checksum="blake3:11",
        blob_stat=[10, 1, 1, 1],
        runtime="2026.4.1",
        runtime_dist="2026.4.1",
        isa=None,
        cpu="c",
    )
    base.update(kw)
    return Entry(**base)  # type: ignore[arg-type]


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.json")
    e = _entry()
    m.entries[e.key] = e
    m.save()
    loaded = Manifest.load(tmp_path / "manifest.json")
    assert loaded.entries[e.key] == e
    assert loaded.generation == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],
        lambda raw: b"\x00" * len(raw),
        lambda raw: raw.replace(b'"version":1', b'"version":2'),  # edited by hand: digest no longer matches
        lambda raw: json.dumps({"schema": 99, "entries": {}}).encode(),
        lambda raw: b"[]",
    ],
)
def test_damaged_manifest_is_reported_not_trusted(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "manifest.json"
    m = Manifest(path)
    e = _entry()
    m.entries[e.key] = e
    m.save()
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ManifestCorrupt, match="corrupt"):
        Manifest.load(path)


def test_writer_sets_corrupt_manifest_aside(tmp_path: Path) -> None:
    cache = CacheDir(tmp_path / "cache").check(create=True, writable=True)
    cache.manifest_path.write_text("{not json")
    with cache.update_manifest() as m:
        assert m.entries == {}
    aside = list(cache.state.glob("manifest.corrupt-*.json"))
    assert len(aside) == 1 and aside[0].read_text() == "{not json"
    assert cache.warnings and "set aside" in cache.warnings[0]
    assert Manifest.load(cache.manifest_path).entries == {}


def test_reader_refuses_corrupt_manifest(tmp_path: Path) -> None:
    cache = CacheDir(tmp_path / "cache").check(create=True, writable=True)
    cache.manifest_path.write_text("{not json")
    with pytest.raises(ManifestCorrupt):
        with cache.update_manifest(repair=False):
            pass
    assert cache.manifest_path.read_text() == "{not json"


def test_real_blob_header(repo: Path, cache_dir: Path) -> None:
    import openvino as ov

    from airflow_ovcache.core.hostfacts import runtime_build

    ov.Core().compile_model(str(repo / "mlp" / "1" / "model.xml"), "CPU", {"CACHE_DIR": str(cache_dir)})
    (blob,) = list(cache_dir.glob("*.blob"))
    header = read_header(blob)
    assert header.runtime_version == runtime_build()
    assert header.isa  # the CPU plugin records the instruction set it compiled for
