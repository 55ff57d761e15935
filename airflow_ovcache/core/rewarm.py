"""Rewarm: verify a cache, rebuild what a warm can fix, and say what it could not.

The nightly job's core. It needs no repository or spec from the caller: every
manifest entry records the version folder, the model file and the spec it was
compiled with, so a blob gone missing, corrupt, stale or foreign is rebuilt
exactly as it was first warmed. What a warm cannot fix (a missing device, model
files that are gone) is reported, not retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import REPAIRABLE_STATUSES, VerifyStatus
from .cachedir import CacheDir
from .manifest import Entry
from .repository import MODEL_SUFFIXES, ModelVersion
from .spec import CacheSpec
from .verify import OK, Verifier, VerifyResult, summarize
from .warm import Warmer, WarmResult


@dataclass
class RewarmReport:
    """A rewarm's three steps: what verify found, what was rewarmed, and what verify found afterwards.

    ``after`` is ``found`` itself when nothing needed rewarming (no second verify ran).
    """

    found: list[VerifyResult] = field(default_factory=list)
    warmed: list[WarmResult] = field(default_factory=list)
    after: list[VerifyResult] = field(default_factory=list)

    @property
    def unrepaired(self) -> list[VerifyResult]:
        """Entries still not ok afterwards. Orphans are reported but are not a repair failure."""
        return [r for r in self.after if r.status not in (OK, VerifyStatus.ORPHAN)]

    def to_json(self) -> dict[str, Any]:
        """The agent's ``rewarm`` result: each step's entries and summaries, and what stayed unrepaired."""
        return {
            "found": [r.to_json() for r in self.found],
            "found_summary": summarize(self.found),
            "rewarmed": [w.to_json() for w in self.warmed],
            "after": [r.to_json() for r in self.after],
            "after_summary": summarize(self.after),
            "unrepaired": [r.to_json() for r in self.unrepaired],
        }


def version_of(entry: Entry) -> ModelVersion:
    """The model version an entry was warmed from, rebuilt from what the manifest recorded (no repository scan).

    :param entry: the manifest entry.
    """
    path = Path(entry.model_path)
    return ModelVersion(entry.model, entry.version, Path(entry.model_dir), path, MODEL_SUFFIXES.get(path.suffix.lower(), "other"))


def rewarm(
    cache: CacheDir,
    *,
    load_check: bool = False,
    statuses: set[str] | None = None,
    confirm: bool = True,
    progress: Callable[[WarmResult], None] | None = None,
) -> RewarmReport:
    """Verify ``cache``, warm again every entry whose status a warm can fix, then verify again.

    Each entry is rewarmed with the spec and model file it records, grouped by the
    repository it came from, and forced (a known-bad entry is rebuilt even where a
    quick check sees nothing wrong). A repairable status that verify marks not
    repairable (a blob another process rewrote under another key) is left alone:
    rebuilding it would start a flip-flop.

    :param cache: the open cache directory.
    :param load_check: let both verifies also load each blob in a fresh process (slower, proves it loads).
    :param statuses: the verify statuses to rebuild; ``None`` means the repairable ones.
    :param confirm: after each rewarm, load the new blob following the entry's profile and fail if it is not used.
    :param progress: called with each warm result as it is made (the CLI's progress lines).
    """
    wanted = statuses if statuses is not None else REPAIRABLE_STATUSES
    report = RewarmReport()
    report.found = Verifier(cache, load_check=load_check).verify()
    manifest = cache.read_manifest()
    # Not what another process rewrote under another key: rebuilding that starts a flip-flop.
    todo = [
        manifest.entries[r.key]
        for r in report.found
        if r.key and r.status in wanted and (r.repairable or r.status not in REPAIRABLE_STATUSES) and r.key in manifest.entries
    ]
    by_repository: dict[str | None, list[Entry]] = {}
    for entry in todo:
        by_repository.setdefault(entry.repository, []).append(entry)
    for repository, entries in sorted(by_repository.items(), key=lambda kv: kv[0] or ""):
        # A known-bad entry is rebuilt even where the quick check sees nothing wrong
        # (a load check that missed the cache, say): hence force.
        warmer = Warmer(cache, repository_root=Path(repository) if repository else None, force=True, confirm=confirm)
        try:
            for entry in entries:
                result = warmer.warm(version_of(entry), CacheSpec.from_json(entry.spec))
                report.warmed.append(result)
                if result.status == "warmed" and result.spec_id != entry.spec_id:
                    # Rewarmed under a new key id (a rotated key): the old record is superseded.
                    with cache.update_manifest() as current:
                        current.entries.pop(entry.key, None)
                if progress is not None:
                    progress(result)
        finally:
            warmer.close()
    report.after = Verifier(cache, load_check=load_check).verify() if todo else report.found
    return report
