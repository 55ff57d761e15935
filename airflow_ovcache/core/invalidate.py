"""Invalidate: remove exactly the blobs that should go, and nothing else.

First a :class:`Plan` (what would be removed, why, and how many bytes it frees),
which a dry run prints; then :func:`apply_plan`, which re-checks each step under
the manifest lock before acting. What goes:

* ``retired``  entries of versions the version policy no longer retains;
* ``stale``    entries whose model files changed or vanished, or whose blob is corrupt;
* ``foreign``  entries whose blob belongs to another runtime build or CPU;
* ``orphan``   blobs no entry accounts for (opt-in; young ones are left alone,
  a server may be writing them right now);
* ``budget``   retained entries evicted, least recently verified first, to fit a
  size budget (opt-in; the newest version of a model is never evicted).

What never goes: anything that is not a regular ``<hash>.blob`` file directly in
the cache directory (symlinks are not followed, names with separators refused),
and any blob still referenced by a kept entry, whatever else references it.

Retention is computed over the versions recorded in the manifest, not those
present in the repository: a version folder that appeared but is not warmed yet
cannot push out the version being served.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..protocol import RemovalReason, VerifyStatus
from ..protocol.location import Location
from .blobfile import is_blob_name
from .cachedir import CacheDir
from .errors import DiskFull
from .fsutil import fsync_dir, regular_file_inside, signals_deferred, unlink_inside
from .manifest import Entry, Manifest
from .policy import VersionPolicy
from .verify import Verifier

STALE_STATUSES = {VerifyStatus.STALE_MODEL, VerifyStatus.MODEL_MISSING, VerifyStatus.CORRUPT, VerifyStatus.KEY_MISMATCH}
FOREIGN_STATUSES = {VerifyStatus.RUNTIME_MISMATCH, VerifyStatus.ISA_MISMATCH}
DEFAULT_ORPHAN_MIN_AGE = 600.0

log = logging.getLogger(__name__)


@dataclass
class Removal:
    """One step of a plan: a blob file to unlink (or only a record to drop), why, and which entries it ends.

    ``delete_file`` is False when only the records go: the blob is already gone
    (``missing``) or a kept entry still uses it. The ``blob_stat`` taken at planning
    time lets :func:`apply_plan` skip a blob rewritten since.
    """

    reason: str  # retired | stale | foreign | orphan | budget | missing
    detail: str
    blob: str | None
    size: int
    entries: list[str] = field(default_factory=list)
    model: str | None = None
    version: int | None = None
    device: str | None = None
    # The blob's stat when planned; apply skips a blob rewritten since.
    blob_stat: list[int] | None = None
    delete_file: bool = True

    def to_json(self) -> dict[str, Any]:
        """The removal as the agent reports it (the planning-time stat is internal and left out)."""
        data = asdict(self)
        data.pop("blob_stat")
        return data


@dataclass
class Plan:
    """What an invalidation would do, decided without touching anything: a dry run prints it, :func:`apply_plan` runs it.

    Besides the removals it says what is kept and why some blobs are spared
    (``protected``: shared with a kept entry; ``young_orphans``: perhaps being
    written right now), which versions each model retains, and the bytes on disk
    before and after against an optional ``budget``.
    """

    cache_dir: str
    removals: list[Removal] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)  # blobs a dropped entry shares with a kept one
    young_orphans: list[str] = field(default_factory=list)  # unrecorded blobs too new to remove
    retained_versions: dict[str, list[int]] = field(default_factory=dict)
    budget: int | None = None
    bytes_before: int = 0
    bytes_after: int = 0
    budget_met: bool = True

    @property
    def bytes_freed(self) -> int:
        """Bytes the removals that delete a file would free."""
        return sum(r.size for r in self.removals if r.delete_file)

    def to_json(self) -> dict[str, Any]:
        """The plan as the agent's ``invalidate`` result reports it (a dry run's whole answer)."""
        return {
            "cache_dir": self.cache_dir,
            "removals": [r.to_json() for r in self.removals],
            "kept": self.kept,
            "protected": self.protected,
            "young_orphans": self.young_orphans,
            "retained_versions": self.retained_versions,
            "budget": self.budget,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_freed": self.bytes_freed,
            "budget_met": self.budget_met,
        }


@dataclass
class ApplyResult:
    """What :func:`apply_plan` did: removals carried out, removals skipped with the reason, and bytes freed.

    A step is skipped when something changed since planning (a rewarm, a rewritten
    blob), which is why a plan is re-checked rather than trusted.
    """

    removed: list[Removal] = field(default_factory=list)
    skipped: list[tuple[Removal, str]] = field(default_factory=list)
    bytes_freed: int = 0

    def to_json(self) -> dict[str, Any]:
        """The agent's report of an applied invalidation, each skipped removal with its ``why``."""
        return {
            "removed": [r.to_json() for r in self.removed],
            "skipped": [{**r.to_json(), "why": why} for r, why in self.skipped],
            "bytes_freed": self.bytes_freed,
        }


def _blob_stat(cache: CacheDir, name: str) -> list[int] | None:
    path = regular_file_inside(cache.root, name)
    if path is None:
        return None
    st = os.lstat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def plan_invalidation(
    cache: CacheDir,
    *,
    policy: VersionPolicy | None = None,
    policies: dict[str, VersionPolicy] | None = None,
    models: list[str] | None = None,
    stale: bool = True,
    foreign: bool = True,
    orphans: bool = False,
    orphan_min_age: float = DEFAULT_ORPHAN_MIN_AGE,
    max_bytes: int | None = None,
    manifest: Manifest | None = None,
    verifier: Verifier | None = None,
) -> Plan:
    """Decide what to remove. Reads only; nothing is touched.

    Retention is decided per model over the versions the manifest records; stale
    and foreign entries come from a quick verify; a budget evicts the least
    recently verified entries that are not a model's newest version.

    :param cache: the cache directory.
    :param policy: the version policy for every model without one in ``policies``; ``None`` retains all versions.
    :param policies: per-model version policies (from an OVMS config, say), ahead of ``policy``.
    :param models: only plan for these models; ``None`` for all.
    :param stale: remove entries whose model changed or vanished, or whose blob is corrupt or under another key.
    :param foreign: remove entries whose blob belongs to another runtime build or CPU.
    :param orphans: also remove blobs no entry accounts for.
    :param orphan_min_age: seconds an orphan must be old before it is removed (a server may be writing it).
    :param max_bytes: a size budget for the cache directory; ``None`` for none.
    :param manifest: the manifest to plan over; ``None`` reads the current one.
    :param verifier: the verifier for the stale and foreign checks; ``None`` makes a quick one without device checks.
    """
    manifest = manifest or cache.read_manifest()
    plan = Plan(str(cache.root), budget=max_bytes)
    scope = [e for e in manifest.entries.values() if models is None or e.model in models]
    doomed: dict[str, Removal] = {}  # entry key -> removal

    # 1. the version policy
    by_model: dict[str, list[Entry]] = {}
    for entry in scope:
        by_model.setdefault(entry.model, []).append(entry)
    for model, entries in sorted(by_model.items()):
        chosen = (policies or {}).get(model, policy)
        versions = sorted({e.version for e in entries})
        retained = chosen.select(versions) if chosen is not None else versions
        plan.retained_versions[model] = retained
        for entry in entries:
            if entry.version not in retained:
                doomed[entry.key] = _removal(
                    cache, entry, RemovalReason.RETIRED, f"version {entry.version} is not retained by {chosen}"
                )

    # 2. stale and foreign blobs, by a quick verify (no load check, no device check)
    if stale or foreign:
        checker = verifier or Verifier(cache, check_devices=False)
        for res in checker.verify(manifest=manifest, include_orphans=False, record=False):
            if res.key is None or res.key in doomed or (models is not None and res.model not in models):
                continue
            entry = manifest.entries[res.key]
            if res.status == VerifyStatus.MISSING:
                doomed[res.key] = _removal(
                    cache, entry, RemovalReason.MISSING, "blob already gone; dropping the record", delete=False
                )
            elif stale and res.status in STALE_STATUSES:
                doomed[res.key] = _removal(cache, entry, RemovalReason.STALE, f"{res.status}: {res.reason}")
            elif foreign and res.status in FOREIGN_STATUSES:
                doomed[res.key] = _removal(cache, entry, RemovalReason.FOREIGN, f"{res.status}: {res.reason}")

    # 3. the size budget, over what is left
    kept_entries = [e for e in manifest.entries.values() if e.key not in doomed]
    on_disk = {name: (_blob_stat(cache, name) or [0])[0] for name in cache.blob_names()}
    plan.bytes_before = sum(on_disk.values())
    if max_bytes is not None:
        _evict_to_budget(cache, manifest, doomed, on_disk, orphans, max_bytes, models)
        kept_entries = [e for e in manifest.entries.values() if e.key not in doomed]

    # 4. turn entry removals into file removals, protecting shared blobs; an entry of several
    #    blobs is removed whole, one removal per blob file
    kept_blobs = {name for e in kept_entries for name in e.all_blobs}
    for key, removal in list(doomed.items()):
        entry = manifest.entries[key]
        for index, name in enumerate(entry.all_blobs[1:], start=1):
            stat = _blob_stat(cache, name)
            doomed[f"{key}#{index}"] = Removal(
                removal.reason,
                f"{removal.detail} (blob {index + 1} of {len(entry.all_blobs)})",
                name,
                stat[0] if stat else 0,
                [key],
                entry.model,
                entry.version,
                entry.device,
                stat,
                stat is not None,
            )
    for removal in doomed.values():
        if removal.blob in kept_blobs:
            removal.delete_file = False
            removal.detail += f"; blob {removal.blob} is kept, another retained entry uses it"
            if removal.blob not in plan.protected:
                plan.protected.append(removal.blob)
    plan.removals = _merge_by_blob(list(doomed.values()))

    # 5. orphans (opt-in)
    if orphans:
        referenced = manifest.blob_names()
        now = time.time()
        for name in cache.blob_names():
            if name in referenced:
                continue
            stat = _blob_stat(cache, name)
            if stat is None:
                continue
            age = now - stat[1] / 1e9
            if age < orphan_min_age:
                plan.young_orphans.append(name)
                continue
            plan.removals.append(Removal(RemovalReason.ORPHAN, "not recorded in the manifest", name, stat[0], blob_stat=stat))

    plan.kept = sorted(e.key for e in kept_entries)
    plan.bytes_after = plan.bytes_before - plan.bytes_freed
    if max_bytes is not None:
        plan.budget_met = plan.bytes_after <= max_bytes
    return plan


def _removal(cache: CacheDir, entry: Entry, reason: str, detail: str, delete: bool = True) -> Removal:
    stat = _blob_stat(cache, entry.blob)
    return Removal(
        reason,
        detail,
        entry.blob,
        stat[0] if stat else 0,
        [entry.key],
        entry.model,
        entry.version,
        entry.device,
        stat,
        delete and stat is not None,
    )


def _merge_by_blob(removals: list[Removal]) -> list[Removal]:
    """Several dropped entries may share one blob: remove the file once, list every entry."""
    merged: dict[str, Removal] = {}
    out: list[Removal] = []
    for removal in sorted(removals, key=lambda r: (r.model or "", r.version or 0, r.device or "")):
        if removal.blob and removal.blob in merged and removal.delete_file == merged[removal.blob].delete_file:
            merged[removal.blob].entries.extend(removal.entries)
            continue
        if removal.blob:
            merged[removal.blob] = removal
        out.append(removal)
    return out


def _evict_to_budget(
    cache: CacheDir,
    manifest: Manifest,
    doomed: dict[str, Removal],
    on_disk: dict[str, int],
    orphans: bool,
    max_bytes: int,
    models: list[str] | None,
) -> None:
    """Doom retained entries, least recently verified first, until what stays fits ``max_bytes``."""
    refs: dict[str, int] = {}
    for entry in manifest.entries.values():
        if entry.key not in doomed:
            for name in entry.all_blobs:
                refs[name] = refs.get(name, 0) + 1
    referenced = manifest.blob_names()
    total = sum(size for name, size in on_disk.items() if refs.get(name) or (name not in referenced and not orphans))
    kept = [e for e in manifest.entries.values() if e.key not in doomed]
    newest: dict[str, int] = {}
    for entry in kept:
        newest[entry.model] = max(newest.get(entry.model, 0), entry.version)
    candidates = sorted(
        (e for e in kept if e.version != newest[e.model] and (models is None or e.model in models)),
        key=lambda e: (e.verified or e.created, e.version, e.key),
    )
    for entry in candidates:
        if total <= max_bytes:
            break
        doomed[entry.key] = _removal(
            cache, entry, RemovalReason.BUDGET, f"evicted to fit the {max_bytes}-byte budget (least recently verified)"
        )
        for name in entry.all_blobs:
            refs[name] -= 1
            if refs[name] == 0:
                total -= on_disk.get(name, 0)


def apply_plan(cache: CacheDir, plan: Plan) -> ApplyResult:
    """Carry out a plan under the manifest lock, re-checking every step.

    The manifest is written first, with the dropped entries gone and their blob
    names in ``pending``; then the files are unlinked; then ``pending`` is
    cleared. A run killed in between leaves a manifest that still lists what is
    left to delete, and :func:`finish_pending` (called by every apply) ends it.

    :param cache: the cache directory the plan was made for.
    :param plan: the plan from :func:`plan_invalidation`.
    """
    result = ApplyResult()
    cache.check(create=False, writable=True)
    with cache.manifest_lock(), signals_deferred():
        manifest = cache.load_manifest()
        finish_pending(cache, manifest, result)
        to_unlink: list[Removal] = []
        referenced = manifest.blob_names()
        for removal in plan.removals:
            why = _stale_step(cache, manifest, removal, referenced)
            if why:
                result.skipped.append((removal, why))
                continue
            for key in removal.entries:
                manifest.entries.pop(key, None)
            if removal.delete_file and removal.blob:
                to_unlink.append(removal)
            else:
                result.removed.append(removal)
        # A blob still referenced after the drops is never unlinked.
        referenced = manifest.blob_names()
        for removal in list(to_unlink):
            if removal.blob in referenced:
                to_unlink.remove(removal)
                result.skipped.append((removal, "another entry still uses this blob"))
        manifest.pending = sorted({*manifest.pending, *(r.blob for r in to_unlink if r.blob)})
        _save_journal(cache, manifest)
        for removal in to_unlink:
            assert removal.blob is not None
            result.bytes_freed += unlink_inside(cache.root, removal.blob)
            result.removed.append(removal)
        if to_unlink:
            fsync_dir(cache.root)
        manifest.pending = []
        manifest.save(cache.where)
    cache.ensure_reserve()
    return result


def _save_journal(cache: CacheDir, manifest: Manifest) -> None:
    """Write the manifest that journals the deletions; on a full disk, release the reserve and write it then.

    The journal must be on disk before any blob is unlinked (that is what makes
    a killed run finishable), and writing it needs room for a new copy of the
    manifest: the space a full disk lacks. The reserve kept in ``.ovcache/`` is
    exactly that room; the deletions that follow give it back, and
    :meth:`CacheDir.ensure_reserve` sets it aside again.
    """
    try:
        manifest.save(cache.where)
    except DiskFull:
        if not cache.release_reserve():
            raise
        log.warning("the cache filesystem is full: released the reserve in %s to journal the removals", cache.state)
        manifest.save(cache.where)


def finish_pending(cache: CacheDir, manifest: Manifest, result: ApplyResult | None = None) -> int:
    """Unlink blobs a previous, interrupted invalidation journaled; caller holds the manifest lock.

    A journaled blob that an entry references again (re-warmed since) is kept. Returns the bytes freed.

    :param cache: the cache directory.
    :param manifest: the manifest loaded under the lock; its ``pending`` is cleared and saved.
    :param result: an apply result to add the freed bytes to, if any.
    """
    if not manifest.pending:
        return 0
    freed = 0
    referenced = manifest.blob_names()
    for name in manifest.pending:
        if name in referenced or not is_blob_name(name):
            continue  # re-warmed since, or not ours to touch
        freed += unlink_inside(cache.root, name)
    manifest.pending = []
    _save_journal(cache, manifest)
    if result is not None:
        result.bytes_freed += freed
    return freed


def _stale_step(cache: CacheDir, manifest: Manifest, removal: Removal, referenced: set[str]) -> str | None:
    """Why a planned removal no longer holds (something changed since planning), or None."""
    if removal.reason == RemovalReason.ORPHAN:
        if removal.blob in referenced:
            return "blob was recorded by a warm-up since the plan was made"
    else:
        for key in removal.entries:
            entry = manifest.entries.get(key)
            if entry is None:
                continue
            if removal.blob not in entry.all_blobs:
                return f"entry {key} was re-warmed since the plan was made"
    if removal.delete_file and removal.blob and _blob_stat(cache, removal.blob) != removal.blob_stat:
        return f"blob {removal.blob} changed since the plan was made"
    return None


def describe_removal(removal: Removal) -> str:
    """One line for a person: reason, ``model@version on device`` (or the blob), and the detail.

    :param removal: the removal.
    """
    who = f"{removal.model}@{removal.version} on {removal.device}" if removal.model else removal.blob or "?"
    return f"{removal.reason:8} {who}: {removal.detail}"


def where_of(removal: Removal) -> Location:
    """Model, version and device of a removal, for error and warning messages about it.

    :param removal: the removal.
    """
    return Location(model=removal.model, version=removal.version, device=removal.device)
