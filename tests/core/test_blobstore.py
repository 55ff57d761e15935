"""The directory blob store: whole, content-addressed objects, checked on every get."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ovcache.core.blobstore import DirectoryStore, SetCorrupt, SetKey, StoreError, prune
from airflow_ovcache.core.policy import VersionPolicy
from tests.conftest import require, usable_by_others

KEY = SetKey("mlp", 1, "abc123", "cpu-0123456789abcdef")
META = {"format": 1, "model": "mlp", "version": 1, "fingerprint": "blake3:00", "model_file_stat": [10, 20]}


def _blobs(folder: Path, seed: int = 1) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    primary, extra = folder / "1111.blob", folder / "2222.blob"
    primary.write_bytes(b"<compiled_blob/>\n" + bytes([seed]) * 300_000)
    extra.write_bytes(b"second" * 1000)
    return [(primary, "blake3:aa"), (extra, "blake3:bb")]


def _objects(root: Path) -> list[Path]:
    return sorted((root / "objects").glob("*/*.set"))


def test_put_then_get_gives_the_same_bytes(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "store")
    (tmp_path / "store").mkdir()
    blobs = _blobs(tmp_path / "src")
    stored = store.put(KEY, META, blobs)
    (obj,) = _objects(tmp_path / "store")
    assert obj.stem == stored.digest and obj.stat().st_size == stored.size
    into = tmp_path / "into"
    into.mkdir()
    got = store.get(KEY, into)
    assert got is not None and got.digest == stored.digest
    assert got.meta["fingerprint"] == "blake3:00" and got.meta["key"] == KEY.to_json()
    assert [r["name"] for r in got.meta["blobs"]] == ["1111.blob", "2222.blob"]
    for path, _ in blobs:
        assert (into / path.name).read_bytes() == path.read_bytes()
    assert [s.key for s in store.list()] == [KEY]
    assert store.get(SetKey("mlp", 1, "abc123", "cpu-ffffffffffffffff"), into) is None
    assert list((tmp_path / "store" / "tmp").iterdir()) == []


def test_the_same_set_twice_is_one_object(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = DirectoryStore(tmp_path / "store")
    blobs = _blobs(tmp_path / "src")
    assert store.put(KEY, META, blobs).digest == store.put(KEY, META, blobs).digest
    assert len(_objects(tmp_path / "store")) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_object_is_refused_and_leaves_nothing(tmp_path: Path, damage: str) -> None:
    (tmp_path / "store").mkdir()
    store = DirectoryStore(tmp_path / "store")
    store.put(KEY, META, _blobs(tmp_path / "src"))
    (obj,) = _objects(tmp_path / "store")
    data = bytearray(obj.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) - 1000]
    obj.write_bytes(bytes(data))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(SetCorrupt) as caught:
        store.get(KEY, into)
    assert obj.stem in caught.value.message and ("checksum" in caught.value.message or "truncated" in caught.value.message)
    assert list(into.iterdir()) == []


def test_concurrent_puts_of_one_set_leave_one_valid_object(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    _blobs(tmp_path / "src")
    code = f"""
from pathlib import Path
from airflow_ovcache.core.blobstore import DirectoryStore, SetKey
src = Path({str(tmp_path / "src")!r})
store = DirectoryStore({str(root)!r})
for _ in range(5):
    store.put(SetKey("mlp", 1, "abc123", "cpu-0123456789abcdef"), {META!r},
              [(src / "1111.blob", "blake3:aa"), (src / "2222.blob", "blake3:bb")])
"""
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    (obj,) = _objects(root)
    into = tmp_path / "into"
    into.mkdir()
    got = DirectoryStore(root).get(KEY, into)
    assert got is not None and got.digest == obj.stem
    assert list((root / "tmp").iterdir()) == []


def test_an_unreachable_store_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = DirectoryStore(tmp_path / "nowhere")
    with pytest.raises(StoreError) as caught:
        missing.get(KEY, tmp_path)
    assert str(tmp_path / "nowhere") in caught.value.one_line() and "\n" not in caught.value.one_line()
    assert not (tmp_path / "nowhere").exists()  # a missing mount is not silently replaced by an empty store
    # A store the agent's user may not read: as ourselves when not root, else as nobody (root reads anything).
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    if os.geteuid() != 0:
        with pytest.raises(StoreError):
            DirectoryStore(locked).list()
        return
    require(shutil.which("runuser") is not None, "needs runuser to act as nobody")
    import tempfile

    locked = Path(tempfile.mkdtemp(prefix="ovcache-store-")) / "locked"  # a folder nobody may traverse to
    os.chmod(locked.parent, 0o755)
    locked.mkdir(mode=0)
    probe = (
        "import sys; from airflow_ovcache.core.blobstore import DirectoryStore, StoreError\n"
        "try:\n    DirectoryStore(sys.argv[1]).list()\nexcept StoreError as e:\n    print('REFUSED', e.one_line())"
    )
    with usable_by_others():
        out = subprocess.run(
            ["runuser", "-u", "nobody", "--", sys.executable, "-c", probe, str(locked)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        )
    shutil.rmtree(locked.parent)
    assert out.stdout.startswith("REFUSED") and str(locked) in out.stdout, (out.stdout, out.stderr[-500:])


def test_prune_keeps_what_the_policy_serves(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    store = DirectoryStore(tmp_path / "store")
    for version in (1, 2, 3):
        key = SetKey("mlp", version, "abc123", "cpu-0123456789abcdef")
        store.put(key, {**META, "version": version}, _blobs(tmp_path / f"src{version}", seed=version))
    store.put(SetKey("other", 1, "abc123", "cpu-0123456789abcdef"), META, _blobs(tmp_path / "srco", seed=9))
    plan = prune(store, VersionPolicy.parse("latest:2"), dry_run=True)
    assert [(s.key.model, s.key.version) for s in plan] == [("mlp", 1)]
    assert len(store.list()) == 4
    prune(store, VersionPolicy.parse("latest:2"))
    assert [(s.key.model, s.key.version) for s in store.list()] == [("mlp", 2), ("mlp", 3), ("other", 1)]
    assert len(_objects(tmp_path / "store")) == 4  # the unreferenced object waits out GC_MIN_AGE
    assert len(store.collect_garbage(min_age=0)) == 1 and len(_objects(tmp_path / "store")) == 3


def test_keys_are_plain_names(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    with pytest.raises(ValueError):
        DirectoryStore(tmp_path / "store").put(SetKey("../x", 1, "a", "cpu-1"), META, [])
