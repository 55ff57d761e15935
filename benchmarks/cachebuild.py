"""Big caches for the growth benchmarks (``scale``, ``invalidate``), built cheaply but honestly.

Warming 10,000 model versions would spend most of an hour compiling, so:

1. ``REAL_MODELS`` tiny real IR models are built (``samples.build_ir``) as version 1
   of ``m0000`` ... ``m0003`` and warmed for real with ``ovcache warm``: real blobs,
   real manifest entries, real host facts;
2. every further entry (``m0000/2`` ... ``m0999/10``: ten versions per model) is a
   copy of one of those model folders and a copy of its blob under a new random
   ``<uint64>.blob`` name (fixed seed), recorded
   through the core's own ``Entry``/``Manifest`` classes with its own checksum
   (``blob_checksum``), blob stat, model-file stat and fingerprint (the core's
   ``Fingerprinter``, which fills the stat cache as a warm would).

Every entry passes every check a verify makes without a load check (only a load
check would notice that a copied blob's name does not match its new model path).

The template is built once per work directory at the largest size asked for; a
benchmark gets a *subset* cache directory of its first N entries: the N blobs
copied (``cp -p``), a manifest of those N entries whose blob stats are the
copies' own (as a warm records them), the host facts, and a stat cache filled
by fingerprinting those N model folders (so it holds what a cache of N entries
would hold). The model repository is shared and never changed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import SEED, Context, spawn, wait_out_racy_window

REAL_MODELS = 4
REAL_SIZE_MB = 0.02
REAL_LAYERS = 2
VERSIONS_PER_MODEL = 10


@dataclass
class Template:
    base: Path
    repository: Path
    cache_dir: Path
    keys: list[str]  # entry keys in subset order: model by model, so N entries are N/10 whole models
    info: dict[str, Any]

    @property
    def entries(self) -> int:
        return len(self.keys)


def _copy_name(i: int) -> tuple[str, int]:
    return f"m{i // VERSIONS_PER_MODEL:04d}", i % VERSIONS_PER_MODEL + 1


def template(ctx: Context, entries: int) -> Template:
    """The template cache with at least ``entries`` entries (built, or grown, once per work directory)."""
    base = ctx.workdir / "scale-template"
    marker = base / "template.json"
    if marker.exists():
        data = json.loads(marker.read_text())
        if len(data["keys"]) >= entries:
            return Template(base, Path(data["repository"]), Path(data["cache_dir"]), data["keys"], data["info"])
    return _build(ctx, base, entries)


def record_copies(
    cache: Any, repo: Path, real: list[Any], places: list[tuple[str, int]], seed: int = SEED
) -> tuple[list[Any], float]:
    """Copy real entries' model folders and blobs to ``places`` and record each copy (see the module doc).

    Place ``i`` copies ``real[i % len(real)]``: its model folder to ``repo/<model>/<version>``
    and its blob under a new random ``<uint64>.blob`` name (fixed seed), then records an
    entry with the copy's own checksum, blob stat, model-file stat and fingerprint.
    Returns the entries and the seconds spent waiting out the stat cache's racy window.
    """
    from airflow_ovcache.core.blobfile import blob_checksum
    from airflow_ovcache.core.filestat import model_file_stat, stat_identity
    from airflow_ovcache.core.fingerprint import Fingerprinter, StatCache
    from airflow_ovcache.core.manifest import Entry, utcnow

    rng = random.Random(seed)
    used = {e.blob for e in real}
    copies = []
    new_files: list[Path] = []
    for i, (model, version) in enumerate(places):
        source = real[i % len(real)]
        target = repo / model / str(version)
        shutil.copytree(source.model_dir, target)
        new_files += list(target.iterdir())
        blob = f"{rng.getrandbits(64)}.blob"
        while blob in used:
            blob = f"{rng.getrandbits(64)}.blob"
        used.add(blob)
        shutil.copyfile(cache.root / source.blob, cache.root / blob)
        os.chmod(cache.root / blob, os.stat(cache.root / source.blob).st_mode & 0o777)  # as warm left the original
        copies.append((source, model, version, target, blob))
    slept = wait_out_racy_window(new_files) if new_files else 0.0
    fingerprinter = Fingerprinter(StatCache.load(cache.stat_cache_path))
    made = []
    for source, model, version, target, blob in copies:
        model_path = target / Path(source.model_path).name
        data = source.to_json()
        data.update(
            model=model,
            version=version,
            model_path=str(model_path),
            model_dir=str(target),
            fingerprint=fingerprinter.fingerprint(target, boundary=repo).digest,
            blob=blob,
            size=os.stat(cache.root / blob).st_size,
            checksum=blob_checksum(cache.root / blob),
            blob_stat=stat_identity(cache.root / blob),
            published_ns=None,  # set from the copy's own stat below, not the source entry's publish time
            model_file_stat=model_file_stat("path", model_path),
            created=utcnow(),
            verified=None,
            load_ms=None,
        )
        entry = Entry.from_json(data)
        entry.published_ns = entry.blob_stat[2]  # as a warm records it: the copy's ctime once in place
        made.append(entry)
    fingerprinter.cache.save()
    with cache.update_manifest() as manifest:
        for entry in made:
            manifest.entries[entry.key] = entry
    return made, slept


def _build(ctx: Context, base: Path, entries: int) -> Template:
    from airflow_ovcache.core.cachedir import CacheDir

    start = time.perf_counter()
    if base.exists():
        shutil.rmtree(base)
    repo = base / "repo"
    cache_dir = base / "cache"
    ctx.log(f"cachebuild: building a template cache of {entries} entries in {base}")
    for k in range(REAL_MODELS):
        ctx.model("scale-template/repo", _copy_name(k * VERSIONS_PER_MODEL)[0], REAL_SIZE_MB, 2000 + k, REAL_LAYERS)
    proc = spawn([*ctx.ovcache(), "warm", "--json", "-q", "--repository", str(repo), "--cache-dir", str(cache_dir)])
    if proc.code != 0:
        raise RuntimeError(f"warming the real models failed: {proc.err[-2000:]}")
    cache = CacheDir(cache_dir).check(create=False, writable=True)
    real = sorted(cache.read_manifest().entries.values(), key=lambda e: e.model)
    real_keys = {(e.model, e.version): e.key for e in real}
    order = [_copy_name(i) for i in range(entries)]
    made, slept = record_copies(cache, repo, real, [place for place in order if place not in real_keys])
    copied_s = time.perf_counter() - start
    by_place = {**{(e.model, e.version): e.key for e in made}, **real_keys}
    keys = [by_place[place] for place in order]
    info = {
        "real_models": len(real),
        "copied_entries": len(made),
        "blob_bytes_each": round(sum(e.size for e in real) / len(real)),
        "model_bytes_each": sum(p.stat().st_size for p in Path(real[0].model_dir).iterdir()),
        "real_model_name": real[0].model,  # its version 1 is a real warm
        "build_s": round(time.perf_counter() - start, 1),
        "copy_s": round(copied_s, 1),
        "racy_wait_s": round(slept, 2),
    }
    data = {"repository": str(repo), "cache_dir": str(cache_dir), "keys": keys, "info": info}
    (base / "template.json").write_text(json.dumps(data))
    ctx.log(f"cachebuild: {len(keys)} entries in {info['build_s']:.0f}s")
    return Template(base, repo, cache_dir, keys, info)


def subset(ctx: Context, tmpl: Template, n: int, dest: Path) -> dict[str, Any]:
    """A cache directory at ``dest`` holding the template's first ``n`` entries (see the module doc)."""
    from airflow_ovcache.core.cachedir import STATE_DIR, CacheDir
    from airflow_ovcache.core.filestat import stat_identity
    from airflow_ovcache.core.fingerprint import Fingerprinter, StatCache
    from airflow_ovcache.core.manifest import Manifest

    if n > tmpl.entries:
        raise ValueError(f"the template has {tmpl.entries} entries, not {n}")
    start = time.perf_counter()
    if dest.exists():
        shutil.rmtree(dest)
    source = CacheDir(tmpl.cache_dir)
    full = source.load_manifest()
    keys = tmpl.keys[:n]
    entries = {k: full.entries[k] for k in keys}
    dest.mkdir(mode=0o700, parents=True)
    (dest / STATE_DIR).mkdir(mode=0o700)
    blobs = sorted({e.blob for e in entries.values()})
    # cp -p in batches: one process per few hundred files, not one per file.
    for i in range(0, len(blobs), 500):
        batch = [str(tmpl.cache_dir / b) for b in blobs[i : i + 500]]
        subprocess.run(["cp", "-p", *batch, str(dest)], check=True)
    shutil.copy2(source.host_facts_path, dest / STATE_DIR / "host.json")
    cache = CacheDir(dest).check(create=False, writable=True)
    for entry in entries.values():
        entry.blob_stat = stat_identity(dest / entry.blob)  # the copy's own stat, as a warm records it
        entry.published_ns = entry.blob_stat[2]
    manifest = Manifest(cache.manifest_path, entries, generation=full.generation, file_mode=cache.policy.file_mode)
    manifest.save()
    fingerprinter = Fingerprinter(StatCache(cache.stat_cache_path, mode=cache.policy.file_mode))
    for entry in entries.values():
        fingerprinter.fingerprint(Path(entry.model_dir), boundary=tmpl.repository)
    fingerprinter.cache.save()
    return {
        "entries": n,
        "blobs": len(blobs),
        "blob_bytes": sum(os.stat(dest / b).st_size for b in blobs),
        "manifest_bytes": cache.manifest_path.stat().st_size,
        "stat_cache_bytes": cache.stat_cache_path.stat().st_size,
        "prepare_s": round(time.perf_counter() - start, 2),
    }
