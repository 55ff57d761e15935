"""Property-based tests: whatever the manifest, the cache directory or the input, nothing escapes.

* Invalidation, planned and applied over a generated cache directory (real
  files: blobs, symlinks named like blobs pointing outside, folders named like
  blobs, other files) and a generated manifest (entries naming ``../x.blob``,
  absolute paths, NUL bytes, symlinks, folders, blobs of other entries...),
  never touches a path outside the cache directory, never removes anything but a
  regular ``<hash>.blob`` file directly inside it, and never removes the blob of
  an entry it keeps, nor, under a pure version policy, of a retained version.
* Each parser fails only with its documented error: the manifest with
  ``ManifestCorrupt``, blob headers with ``BlobHeaderError``, serving configs and
  version policies with ``UsageError``, names with ``InvalidName``, keys with
  ``EncryptionError``, a sealed section with ``ValueError``.

Seeds are fixed (``derandomize``); ``OVCACHE_FUZZ_EXAMPLES`` raises the example counts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from airflow_ovcache.core.blobfile import BlobHeaderError, parse_header, read_header
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.encryption import CacheCipher, probe_blob
from airflow_ovcache.core.errors import EncryptionError, InvalidName, ManifestCorrupt, OvcacheError, UsageError
from airflow_ovcache.core.invalidate import apply_plan, plan_invalidation
from airflow_ovcache.core.manifest import MANIFEST_SCHEMA, Manifest, _digest
from airflow_ovcache.core.permissions import AccessPolicy
from airflow_ovcache.core.policy import VersionPolicy
from airflow_ovcache.core.repository import check_model_name, parse_version
from airflow_ovcache.core.spec import ServingConfig

SCALE = float(os.environ.get("OVCACHE_FUZZ_EXAMPLES", "1"))


def examples(n: int) -> Any:
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


HEADER = (
    b'<?xml version="1.0"?><compiled_blob ie_version="2026.4.1-x" file_info="1" '
    b'runtime_info="{OV_VERSION:2026.4.1-x}" header_size_alignment="0"/>\n'
)
BLOB_NAMES = [f"{n}.blob" for n in (11, 22, 33, 44, 55, 66)]
HOSTILE_NAMES = [
    "../outside/victim.blob",
    "..",
    ".",
    "",
    "/etc/passwd",
    "victim.blob",
    "sub/77.blob",
    "88.blob\x00",
    ".ovcache/manifest.json",
    "notes.txt",
    "link.blob",
    "99.blob",
]


# -- a generated world: cache directory, things outside it, a manifest ------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from(["blob", "symlink-out", "dir", "absent", "torn"]), min_size=6, max_size=6))
    entries = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "model": st.sampled_from(["a", "b", "c"]),
                    "version": st.integers(1, 5),
                    # mostly valid names (symlinks, folders, torn files among them), now and then a hostile one
                    "blob": st.sampled_from(BLOB_NAMES * 5 + HOSTILE_NAMES),
                    "spec_id": st.sampled_from(["s1", "s2"]),
                    "model_dir": st.sampled_from(["repo", "outside", "missing", "/"]),
                    "size": st.integers(0, 4096),
                    "blob_stat": st.one_of(st.lists(st.integers(0, 2**40), min_size=4, max_size=4), st.none()),
                    "key_id": st.one_of(st.none(), st.sampled_from(["k1", "k2"])),
                }
            ),
            max_size=10,
        )
    )
    policy = draw(st.sampled_from(["latest:1", "latest:2", "specific:2,4", "all", "latest:3"]))
    pending = draw(st.lists(st.sampled_from(BLOB_NAMES + HOSTILE_NAMES), max_size=3))
    mode = draw(st.sampled_from(["policy-only", "everything"]))
    max_bytes = draw(st.one_of(st.none(), st.integers(0, 20000))) if mode == "everything" else None
    return {"kinds": kinds, "entries": entries, "policy": policy, "pending": pending, "mode": mode, "max_bytes": max_bytes}


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every path under ``root`` (symlinks not followed) with what it is and holds."""
    out: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", "")
            else:
                with open(path, "rb") as handle:
                    out[rel] = ("file", handle.read())
    return out


def _build(base: Path, world: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    cache, outside, repo = base / "cache", base / "outside", base / "repo"
    for folder in (cache / ".ovcache", outside, repo / "a" / "1"):
        folder.mkdir(parents=True)
    os.chmod(cache, 0o700)
    (outside / "victim.blob").write_bytes(HEADER + b"outside")
    (outside / "secret.txt").write_text("keep me")
    (repo / "a" / "1" / "model.xml").write_text("<net/>")
    (cache / "notes.txt").write_text("not a blob")
    os.symlink(outside / "victim.blob", cache / "link.blob")
    os.symlink(outside, cache / "sub")
    for name, kind in zip(BLOB_NAMES, world["kinds"], strict=True):
        path = cache / name
        if kind == "blob":
            path.write_bytes(HEADER + name.encode() * 20)
        elif kind == "torn":
            path.write_bytes(HEADER[:30])
        elif kind == "symlink-out":
            os.symlink(outside / "victim.blob", path)
        elif kind == "dir":
            path.mkdir()
            (path / "inside").write_text("a folder named like a blob")
    entries: dict[str, Any] = {}
    where = {"repo": repo / "a" / "1", "outside": outside, "missing": base / "gone", "/": Path("/")}
    for raw in world["entries"]:
        model_dir = where[raw["model_dir"]]
        entry = {
            "model": raw["model"],
            "version": raw["version"],
            "device": "CPU",
            "spec_id": raw["spec_id"],
            "spec": {"compile_mode": "path", "cache_mode": "OPTIMIZE_SPEED", "properties": {}, "encryption_key_file": None},
            "model_path": str(model_dir / "model.xml"),
            "model_dir": str(model_dir),
            "fingerprint": "blake3:00",
            "blob": raw["blob"],
            "size": raw["size"],
            "checksum": "blake3:00",
            "blob_stat": raw["blob_stat"],
            "runtime": "2026.4.1-x",
            "runtime_dist": "2026.4.1",
            "isa": None,
            "cpu": "cpu",
            "key_id": raw["key_id"],
            "repository": None,
            "model_file_stat": None,
            "compile_seconds": 0.0,
            "created": "2026-01-01T00:00:00+00:00",
            "verified": None,
            "load_ms": None,
        }
        entries[f"{raw['model']}/{raw['version']}/CPU/{raw['spec_id']}"] = entry
    doc = {"schema": MANIFEST_SCHEMA, "generation": 1, "updated": "", "entries": entries, "pending": world["pending"]}
    doc["digest"] = _digest(entries, world["pending"])
    (cache / ".ovcache" / "manifest.json").write_text(json.dumps(doc))
    return cache, entries


@examples(60)
@given(worlds())
def test_invalidation_never_touches_outside_the_cache_nor_a_kept_blob(world: dict[str, Any]) -> None:
    base = Path(tempfile.mkdtemp(prefix="ovcache-fuzz-"))
    try:
        cache_root, entries = _build(base, world)
        before_outside = {d: _snapshot(base / d) for d in ("outside", "repo")}
        before_cache = _snapshot(cache_root)
        cache = CacheDir(cache_root, policy=AccessPolicy(unsafe="warn"), lock_timeout=5)
        try:
            manifest = cache.load_manifest()
        except ManifestCorrupt:
            return
        policy = VersionPolicy.parse(world["policy"])
        everything = world["mode"] == "everything"
        try:
            plan = plan_invalidation(
                cache,
                policy=policy,
                stale=everything,
                foreign=everything,
                orphans=everything,
                orphan_min_age=0,
                max_bytes=world["max_bytes"],
                manifest=manifest,
            )
            apply_plan(cache, plan)
        except OvcacheError:
            pass  # a documented refusal is fine; what it may not do is checked below
        after_cache = _snapshot(cache_root)
        # 1. nothing outside the cache directory changed
        for d, snap in before_outside.items():
            assert _snapshot(base / d) == snap, f"{d} was touched"
        # 2. only regular <hash>.blob files directly in the cache directory were removed
        removed = set(before_cache) - set(after_cache)
        for rel in removed:
            assert "/" not in rel and rel.endswith(".blob") and before_cache[rel][0] == "file", f"removed {rel!r}"
        for rel, (kind, data) in before_cache.items():
            if rel in after_cache and kind != "file" or rel.startswith(".ovcache"):
                continue
            if rel in after_cache:
                assert after_cache[rel] == (kind, data), f"{rel} was changed"
        # 3. no blob of an entry still in the manifest, nor (policy only) of a retained version, was removed
        kept = Manifest.load(cache.manifest_path).entries if cache.manifest_path.exists() else {}
        for entry in kept.values():
            assert entry.blob not in removed, f"kept entry {entry.key} lost its blob"
        if not everything:
            by_model: dict[str, list[int]] = {}
            for e in entries.values():
                by_model.setdefault(e["model"], []).append(e["version"])
            for e in entries.values():
                if e["version"] in policy.select(sorted(set(by_model[e["model"]]))):
                    assert e["blob"] not in removed, f"retained {e['model']}@{e['version']} lost {e['blob']}"
    finally:
        shutil.rmtree(base, ignore_errors=True)


@examples(60)
@given(worlds(), st.lists(st.sampled_from(BLOB_NAMES + HOSTILE_NAMES), max_size=8))
def test_applying_any_plan_removes_nothing_but_unreferenced_blobs(world: dict[str, Any], names: list[str]) -> None:
    """Below the manifest parser: a plan naming anything at all (a stale plan, a bug) is still held in."""
    from airflow_ovcache.core.invalidate import Plan, Removal

    # a valid manifest: the hostile names are in the plan only
    entries = [{**e, "blob_stat": e["blob_stat"] or [0, 0, 0, 0]} for e in world["entries"] if e["blob"] in BLOB_NAMES]
    world = {**world, "entries": entries, "pending": [p for p in world["pending"] if p in BLOB_NAMES]}
    base = Path(tempfile.mkdtemp(prefix="ovcache-fuzz-"))
    try:
        cache_root, _ = _build(base, world)
        before_outside = {d: _snapshot(base / d) for d in ("outside", "repo")}
        before_cache = _snapshot(cache_root)
        cache = CacheDir(cache_root, policy=AccessPolicy(unsafe="warn"), lock_timeout=5)
        try:
            referenced = cache.load_manifest().blob_names()
        except ManifestCorrupt:
            referenced = set()  # apply refuses to act on it at all
        plan = Plan(str(cache_root))
        for name in names:
            try:
                st_ = os.lstat(cache_root / name) if name and "\x00" not in name else None
            except OSError:
                st_ = None
            stat = [st_.st_size, st_.st_mtime_ns, st_.st_ctime_ns, st_.st_ino] if st_ else None
            plan.removals.append(Removal("orphan", "fuzz", name, 0, blob_stat=stat))
        try:
            apply_plan(cache, plan)
        except OvcacheError:
            pass
        for d, snap in before_outside.items():
            assert _snapshot(base / d) == snap, f"{d} was touched"
        after = _snapshot(cache_root)
        for rel in set(before_cache) - set(after):
            assert "/" not in rel and rel.endswith(".blob") and before_cache[rel][0] == "file", f"removed {rel!r}"
            assert rel not in referenced, f"removed {rel}, which an entry uses"
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- repository trees --------------------------------------------------------------------------------

TREE_NAMES = [
    "m",
    "n",
    "1",
    "2",
    "01",
    "-1",
    "¹",
    "9" * 30,
    ".hidden",
    "a b",
    "model.xml",
    "model.bin",
    "x.onnx",
    "w" * 300,
    "...",
]


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[list[str], str]]:
    """Paths (as component lists, up to 3 deep) and what each is: file, folder, or symlink to in/out/nowhere."""
    items = draw(
        st.lists(
            st.tuples(
                st.lists(st.sampled_from(TREE_NAMES), min_size=1, max_size=3),
                st.sampled_from(["file", "dir", "link-out-file", "link-out-dir", "link-in", "dangling", "loop"]),
            ),
            max_size=14,
        )
    )
    return items


@examples(80)
@given(trees())
def test_repository_discovery_and_fingerprints_stay_inside_the_root(items: list[tuple[list[str], str]]) -> None:
    from airflow_ovcache.core.errors import ModelNotFound
    from airflow_ovcache.core.fingerprint import Fingerprinter
    from airflow_ovcache.core.repository import ModelRepository

    base = Path(tempfile.mkdtemp(prefix="ovcache-fuzz-repo-"))
    try:
        root, outside = base / "repo", base / "outside"
        (outside / "dir").mkdir(parents=True)
        (outside / "secret.bin").write_bytes(b"outside")
        (outside / "dir" / "model.xml").write_text("<net/>")
        (outside / "dir" / "model.bin").write_bytes(b"outside weights")
        root.mkdir()
        for parts, kind in items:
            path = root.joinpath(*parts)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if kind == "file":
                    path.write_bytes(b"inside")
                elif kind == "dir":
                    path.mkdir(exist_ok=True)
                elif kind == "link-out-file":
                    os.symlink(outside / "secret.bin", path)
                elif kind == "link-out-dir":
                    os.symlink(outside / "dir", path)
                elif kind == "link-in":
                    os.symlink(root, path)
                elif kind == "dangling":
                    os.symlink(base / "nowhere", path)
                else:
                    os.symlink(path, path)
            except OSError:
                continue  # the generated tree contradicts itself (a file where a folder is wanted)
        documented = (InvalidName, ModelNotFound, UsageError)
        repo = ModelRepository(root)
        real_root = os.path.realpath(root)
        inside = lambda p: os.path.realpath(p) == real_root or os.path.realpath(p).startswith(real_root + os.sep)  # noqa: E731
        for model in repo.models():
            assert inside(root / model)
            try:
                versions = repo.versions(model)
            except documented:
                continue
            for number in versions:
                try:
                    version = repo.version(model, number)
                except documented:
                    continue
                assert inside(version.model_file), version
                try:
                    fingerprinter = Fingerprinter()
                    for _, full in fingerprinter._files(version.directory, real_root, version.where):
                        assert inside(full), full
                    fingerprinter.fingerprint(version.directory, version.where, root)
                except documented:
                    pass
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- the parsers fail only with their documented error -----------------------------------------------


def _valid_manifest() -> bytes:
    entry = {
        "model": "m", "version": 1, "device": "CPU", "spec_id": "s", "spec": {}, "model_path": "/m/1/model.xml",
        "model_dir": "/m/1", "fingerprint": "f", "blob": "1.blob", "size": 1, "checksum": "c", "blob_stat": [1, 2, 3, 4],
        "runtime": "r", "runtime_dist": "r", "isa": None, "cpu": "c",
    }  # fmt: skip
    entries = {"m/1/CPU/s": entry}
    return json.dumps(
        {"schema": MANIFEST_SCHEMA, "generation": 1, "entries": entries, "pending": [], "digest": _digest(entries, [])}
    ).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@examples(300)
@given(st.one_of(st.binary(max_size=2000), st.text(max_size=500).map(str.encode)))
def test_the_manifest_parser_fails_only_with_manifest_corrupt(raw: bytes) -> None:
    try:
        Manifest.parse(Path("m.json"), raw)
    except ManifestCorrupt:
        pass


@examples(300)
@given(st.data())
def test_a_manifest_with_a_valid_digest_and_wrong_fields_is_corrupt_not_a_crash(data: st.DataObject) -> None:
    doc = json.loads(_valid_manifest())
    entry = doc["entries"]["m/1/CPU/s"]
    for _ in range(data.draw(st.integers(1, 4))):
        field = data.draw(st.sampled_from([*entry, "extra"]))
        entry[field] = data.draw(json_values)
    if data.draw(st.booleans()):
        doc["generation"] = data.draw(json_values)
    doc["digest"] = _digest(doc["entries"], doc["pending"]) if data.draw(st.booleans()) else doc["digest"]
    raw = json.dumps(doc, allow_nan=True).encode()
    try:
        manifest = Manifest.parse(Path("m.json"), raw)
    except ManifestCorrupt:
        return
    # What parses is typed as the rest of the agent expects it.
    for e in manifest.entries.values():
        assert isinstance(e.blob, str) and isinstance(e.version, int) and isinstance(e.size, int)
        assert isinstance(e.blob_stat, list) and all(isinstance(x, int) for x in e.blob_stat)
        assert isinstance(e.spec, dict) and isinstance(e.model_path, str) and isinstance(e.checksum, str)
        assert e.key_id is None or isinstance(e.key_id, str)


def test_deeply_nested_or_huge_numbers_are_corrupt_too() -> None:
    for raw in (b"[" * 100000 + b"]" * 100000, b'{"schema": 1, "generation": 1e999}', b'{"generation": Infinity}'):
        try:
            Manifest.parse(Path("m.json"), raw)
        except ManifestCorrupt:
            pass


@examples(400)
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=400).map(lambda b: HEADER + b),
        st.binary(max_size=200).map(lambda b: HEADER[: len(b) % len(HEADER)] + b),
    )
)
def test_blob_headers_fail_only_with_blob_header_error(raw: bytes) -> None:
    try:
        header = parse_header(raw)
    except BlobHeaderError:
        return
    assert isinstance(header.runtime_version, str)


@examples(100)
@given(st.binary(max_size=300))
def test_reading_a_blob_header_or_probing_its_key_never_crashes(raw: bytes) -> None:
    with tempfile.NamedTemporaryFile(suffix=".blob") as handle:
        handle.write(raw)
        handle.flush()
        try:
            read_header(Path(handle.name))
        except BlobHeaderError:
            pass
        assert probe_blob(Path(handle.name), b"k" * 32) in ("key", "other-key", "plain")


@examples(200)
@given(st.binary(max_size=200))
def test_a_sealed_section_that_is_not_ours_fails_with_value_error(raw: bytes) -> None:
    cipher = CacheCipher(b"k" * 32)
    try:
        cipher.decrypt(raw)
    except ValueError:
        assert cipher.decrypt_failures == 1
    sealed = cipher.encrypt(raw)
    assert cipher.decrypt(sealed) == raw


@examples(200)
@given(st.binary(max_size=100))
def test_keys_fail_only_with_encryption_error(raw: bytes) -> None:
    from airflow_ovcache.core.encryption import parse_key

    try:
        assert len(parse_key(raw, "key")) == 32
    except EncryptionError as exc:
        assert raw.decode("latin-1") not in str(exc) or len(raw) < 3


@examples(200)
@given(st.one_of(st.text(max_size=40), st.dictionaries(st.text(max_size=10), json_values, max_size=3)))
def test_version_policies_fail_only_with_usage_error(text: Any) -> None:
    try:
        policy = VersionPolicy.parse(text)
    except UsageError:
        return
    assert isinstance(policy.select([1, 2, 3]), list)


@examples(200)
@given(st.text(max_size=40))
def test_names_and_versions_fail_only_with_invalid_name(text: str) -> None:
    for check in (check_model_name, parse_version):
        try:
            check(text)
        except InvalidName:
            pass


@examples(150)
@given(
    st.one_of(st.text(max_size=300), st.dictionaries(st.text(max_size=10), json_values, max_size=4).map(json.dumps)),
    st.booleans(),
)
def test_serving_configs_fail_only_with_usage_error(text: str, as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("serving.json" if as_json else "serving.toml")
        path.write_text(text)
        try:
            config = ServingConfig.load(path)
            config.specs_for("m", {"properties": {}})
        except UsageError:
            pass
    assume(True)
