"""Verify statuses and invalidation plans on real caches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from airflow_ovcache.core import hostfacts
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.errors import ManifestCorrupt
from airflow_ovcache.core.invalidate import apply_plan, finish_pending, plan_invalidation
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.core.policy import VersionPolicy
from airflow_ovcache.core.repository import ModelRepository
from airflow_ovcache.core.spec import CacheSpec
from airflow_ovcache.core.verify import Verifier
from airflow_ovcache.core.warm import Warmer
from airflow_ovcache.samples import swap_weights_in_place
from tests.conftest import blobs_in


def warm_all(repo: Path, cache_dir: Path, versions: str = "all", models: tuple[str, ...] = ("mlp",)) -> CacheDir:
    r = ModelRepository(repo)
    cache = CacheDir(cache_dir).check(create=True, writable=True)
    warmer = Warmer(cache, repository_root=r.root)
    for model in models:
        for v in r.select(model, VersionPolicy.parse(versions)):
            res = warmer.warm(v, CacheSpec.make())
            assert res.status == "warmed", res.reason
    warmer.close()
    return cache


def statuses(cache: CacheDir, **kw: object) -> dict[str, str]:
    return {f"{r.model}@{r.version}" if r.model else r.blob or "?": r.status for r in Verifier(cache, **kw).verify()}  # type: ignore[arg-type]


def test_fresh_cache_verifies_ok_with_load_and_inference_checks(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    results = Verifier(cache, infer_check=True).verify()
    assert [r.status for r in results] == ["ok", "ok"]
    assert all(r.loaded_from_cache and r.outputs_match and r.load_ms for r in results)
    entries = Manifest.load(cache.manifest_path).select()
    assert all(e.verified for e in entries)
    # The load check copied each blob (an older agent hard-linked it); a no-op warm must stay a no-op.
    r = ModelRepository(repo)
    assert Warmer(cache, repository_root=r.root).warm(r.version("mlp", 2), CacheSpec.make()).status == "unchanged"


def test_same_size_weight_swap_is_stale_and_warm_fixes_it(repo: Path, cache_dir: Path) -> None:
    """The case OpenVINO serves stale: model.bin replaced in place, same size, .xml untouched."""
    from tests.core.test_warm import serving_compile

    cache = warm_all(repo, cache_dir, versions="latest:1")
    xml = repo / "mlp" / "2" / "model.xml"
    _, before = serving_compile(xml, cache_dir / "reference-old")
    xml_stat = xml.stat()
    swap_weights_in_place(repo / "mlp" / "2" / "model.bin", seed=77)
    assert xml.stat().st_mtime_ns == xml_stat.st_mtime_ns
    # OpenVINO itself still loads the old blob and serves the old weights:
    loaded, stale_out = serving_compile(xml, cache_dir)
    assert loaded is True and stale_out == before
    assert statuses(cache) == {"mlp@2": "stale-model"}
    r = ModelRepository(repo)
    res = Warmer(cache, repository_root=r.root).warm(r.version("mlp", 2), CacheSpec.make())
    assert res.status == "warmed" and "changed" in res.reason
    loaded, served = serving_compile(xml, cache_dir)
    _, fresh = serving_compile(xml, cache_dir / "reference-new")
    assert loaded is True and served == fresh and served != before
    assert statuses(cache) == {"mlp@2": "ok"}


def test_missing_corrupt_and_orphan(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    m = Manifest.load(cache.manifest_path)
    e1, e2 = m.select(version=1)[0], m.select(version=2)[0]
    (cache_dir / e1.blob).unlink()
    blob2 = cache_dir / e2.blob
    os.chmod(blob2, 0o640)
    with open(blob2, "r+b") as f:  # flip bytes in the body, same size
        f.seek(blob2.stat().st_size // 2)
        f.write(b"\xff" * 64)
    shutil.copy2(blob2, cache_dir / "123456789.blob")
    got = statuses(cache)
    assert got == {"mlp@1": "missing", "mlp@2": "corrupt", "123456789.blob": "orphan"}


def test_truncated_blob_is_corrupt(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir, versions="latest:1")
    (blob,) = blobs_in(cache_dir)
    os.chmod(blob, 0o640)
    os.truncate(blob, blob.stat().st_size // 3)
    (res,) = Verifier(cache).verify()
    assert res.status == "corrupt" and "truncated" in res.reason


def test_model_folder_removed(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    shutil.rmtree(repo / "mlp" / "1")
    assert statuses(cache) == {"mlp@1": "model-missing", "mlp@2": "ok"}


def test_runtime_upgrade_and_new_cpu_are_reported(repo: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulated: one OpenVINO build and one CPU are all this machine has. The blob is real;
    # what the host reports about itself is replaced, as after an upgrade or a VM migration.
    cache = warm_all(repo, cache_dir, versions="latest:1")
    monkeypatch.setattr(hostfacts, "runtime_build", lambda *_: "2099.1.0-1-future")
    assert statuses(cache) == {"mlp@2": "runtime-mismatch"}
    monkeypatch.undo()
    monkeypatch.setattr(hostfacts, "host_isa", lambda facts: "Intel SSE4.2")
    assert statuses(cache) == {"mlp@2": "isa-mismatch"}


def test_every_status_has_a_reason(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    (cache_dir / Manifest.load(cache.manifest_path).select(version=1)[0].blob).unlink()
    for res in Verifier(cache).verify():
        assert res.reason and "\n" not in res.reason


# -- invalidation ----------------------------------------------------------------------------------


def test_policy_removes_exactly_the_retired_versions(repo: Path, cache_dir: Path, add_version) -> None:  # type: ignore[no-untyped-def]
    add_version(repo, "mlp", 3)
    cache = warm_all(repo, cache_dir, models=("mlp", "tiny"))
    before = {e.version: e.blob for e in Manifest.load(cache.manifest_path).select(model="mlp")}
    plan = plan_invalidation(cache, policy=VersionPolicy.parse("latest:2"))
    assert [(r.reason, r.version) for r in plan.removals] == [("retired", 1)]
    assert plan.bytes_freed == (cache_dir / before[1]).stat().st_size
    dry = {p.name for p in blobs_in(cache_dir)}
    assert len(dry) == 4  # planning touched nothing
    result = apply_plan(cache, plan)
    assert result.bytes_freed == plan.bytes_freed
    left = {p.name for p in blobs_in(cache_dir)}
    assert left == dry - {before[1]}
    m = Manifest.load(cache.manifest_path)
    assert sorted((e.model, e.version) for e in m.entries.values()) == [("mlp", 2), ("mlp", 3), ("tiny", 1)]
    assert m.pending == []


def test_stale_blob_is_removed_and_retained_ok_ones_are_not(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    swap_weights_in_place(repo / "mlp" / "1" / "model.bin", seed=3)
    plan = plan_invalidation(cache)
    assert [(r.reason, r.version) for r in plan.removals] == [("stale", 1)]
    apply_plan(cache, plan)
    assert statuses(cache) == {"mlp@2": "ok"}


def test_shared_blob_of_a_retained_entry_is_never_removed(repo: Path, cache_dir: Path) -> None:
    """By-model compiles of identical versions share one blob: retiring v1 must keep v2's blob."""
    shutil.rmtree(repo / "mlp" / "2")
    shutil.copytree(repo / "mlp" / "1", repo / "mlp" / "2")
    r = ModelRepository(repo)
    cache = CacheDir(cache_dir).check(create=True, writable=True)
    w = Warmer(cache, repository_root=r.root)
    spec = CacheSpec.make(compile_mode="model")
    a, b = w.warm(r.version("mlp", 1), spec), w.warm(r.version("mlp", 2), spec)
    assert a.blob == b.blob
    plan = plan_invalidation(cache, policy=VersionPolicy.parse("latest:1"))
    assert len(plan.removals) == 1 and not plan.removals[0].delete_file and plan.protected == [a.blob]
    apply_plan(cache, plan)
    assert (cache_dir / a.blob).exists()
    assert statuses(cache) == {"mlp@2": "ok"}


def test_orphans_are_opt_in_and_young_ones_are_spared(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir, versions="latest:1")
    (blob,) = blobs_in(cache_dir)
    old, young = cache_dir / "111.blob", cache_dir / "222.blob"
    shutil.copy(blob, old)
    shutil.copy(blob, young)
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert plan_invalidation(cache).removals == []
    plan = plan_invalidation(cache, orphans=True)
    assert [r.blob for r in plan.removals] == ["111.blob"] and plan.young_orphans == ["222.blob"]
    apply_plan(cache, plan)
    assert sorted(p.name for p in blobs_in(cache_dir)) == sorted([blob.name, "222.blob"])


def test_nothing_outside_the_cache_directory_is_touched(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    cache = warm_all(repo, cache_dir)
    victim = tmp_path / "precious.blob"
    victim.write_bytes(b"keep me")
    os.symlink(victim, cache_dir / "999.blob")  # an orphan that is a symlink out of the cache
    plan = plan_invalidation(cache, policy=VersionPolicy.parse("latest:1"), orphans=True, orphan_min_age=0)
    apply_plan(cache, plan)
    assert victim.read_bytes() == b"keep me"
    assert (cache_dir / "999.blob").is_symlink()
    with cache.update_manifest() as m:  # a manifest entry steered outside the directory
        e = m.select(version=2)[0]
        e.blob = "../precious.blob"
    # is refused with the whole manifest (corrupt), never followed
    with pytest.raises(ManifestCorrupt, match="not a <hash>.blob file name"):
        apply_plan(cache, plan_invalidation(cache, policy=VersionPolicy.parse("latest:1"), orphans=True, orphan_min_age=0))
    assert victim.read_bytes() == b"keep me"
    assert (cache_dir / "999.blob").is_symlink()


def test_size_budget_evicts_older_versions_never_the_newest(repo: Path, cache_dir: Path, add_version) -> None:  # type: ignore[no-untyped-def]
    add_version(repo, "mlp", 3)
    cache = warm_all(repo, cache_dir)
    size = blobs_in(cache_dir)[0].stat().st_size
    plan = plan_invalidation(cache, max_bytes=int(size * 1.5))
    assert sorted(r.version for r in plan.removals) == [1, 2] and plan.budget_met
    assert {r.reason for r in plan.removals} == {"budget"}
    impossible = plan_invalidation(cache, max_bytes=10)
    assert not impossible.budget_met  # the newest version alone is over budget, and it stays
    assert 3 not in [r.version for r in impossible.removals]


def test_plan_is_rechecked_when_applied(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    plan = plan_invalidation(cache, policy=VersionPolicy.parse("latest:1"))
    r = ModelRepository(repo)
    Warmer(cache, repository_root=r.root, force=True).warm(r.version("mlp", 1), CacheSpec.make())
    result = apply_plan(cache, plan)
    assert result.removed == [] and "changed since the plan" in result.skipped[0][1]
    assert len(blobs_in(cache_dir)) == 2


def test_interrupted_invalidation_is_finished_by_the_next(repo: Path, cache_dir: Path) -> None:
    cache = warm_all(repo, cache_dir)
    doomed = Manifest.load(cache.manifest_path).select(version=1)[0]
    with cache.update_manifest() as m:  # the state a kill between journal and unlink leaves behind
        del m.entries[doomed.key]
        m.pending = [doomed.blob]
    assert (cache_dir / doomed.blob).exists()
    with cache.manifest_lock():
        manifest = cache.read_manifest()
        assert finish_pending(cache, manifest) > 0
    assert not (cache_dir / doomed.blob).exists()
    assert cache.read_manifest().pending == []
