"""Status: what the cache directory holds, from the manifest and a stat per blob.

The quick look for a person or a dashboard: no hashing, no OpenVINO import.
Evidence (was each blob read since it was published?) costs one more ``lstat``
per blob and one read of the mount table; an orphan's header (a few KB) says
whether a server wrote it after a warm-up.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .cachedir import CacheDir
from .evidence import EvidenceReader, describe_orphan
from .manifest import Manifest


@dataclass
class StatusRow:
    """One managed entry as ``status`` lists it (the ``entries`` rows of the status shape)."""

    model: str
    version: int
    device: str
    spec_id: str
    blob: str
    size: int
    present: bool
    created: str
    verified: str | None
    load_ms: float | None
    compile_seconds: float
    runtime: str
    evidence: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as the status shape's ``entries`` item."""
        return asdict(self)


@dataclass
class CacheStatus:
    """What one cache directory holds: the ``status`` command's result (:data:`airflow_ovcache.protocol.shapes.STATUS`)."""

    cache_dir: str
    entries: list[StatusRow] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    total_bytes: int = 0
    blob_count: int = 0
    generation: int = 0

    @property
    def missing(self) -> int:
        """How many recorded blobs are not in the directory."""
        return sum(1 for r in self.entries if not r.present)

    def to_json(self) -> dict[str, Any]:
        """The status shape, without the command's ``warnings``."""
        return {
            "cache_dir": self.cache_dir,
            "entries": [r.to_json() for r in self.entries],
            "orphans": self.orphans,
            "pending": self.pending,
            "total_bytes": self.total_bytes,
            "blob_count": self.blob_count,
            "missing": self.missing,
            "generation": self.generation,
        }


def cache_status(cache: CacheDir, manifest: Manifest | None = None) -> CacheStatus:
    """What the cache directory holds, from the manifest and one stat per blob (no hashing, no OpenVINO).

    :param cache: the cache directory.
    :param manifest: an already read manifest (default: read it now).
    """
    manifest = manifest or cache.read_manifest()
    on_disk: dict[str, os.stat_result] = {}
    for name in cache.blob_names():
        try:
            on_disk[name] = os.lstat(cache.root / name)
        except FileNotFoundError:
            continue
    reader = EvidenceReader(cache.root)
    status = CacheStatus(str(cache.root), generation=manifest.generation, pending=list(manifest.pending))
    for entry in manifest.select():
        status.entries.append(
            StatusRow(
                entry.model,
                entry.version,
                entry.device,
                entry.spec_id,
                entry.blob,
                entry.total_size,
                all(name in on_disk for name in entry.all_blobs),
                entry.created,
                entry.verified,
                entry.load_ms,
                entry.compile_seconds,
                entry.runtime,
                reader.for_entry(entry).to_json(),
            )
        )
    referenced = manifest.blob_names()
    entries = list(manifest.entries.values())
    for name, st in sorted(on_disk.items()):
        if name in referenced:
            continue
        seen = describe_orphan(cache.root / name, entries, st)
        orphan: dict[str, Any] = {"blob": name, "size": st.st_size, "server_compiled": seen.server_compiled, "mtime": seen.mtime}
        orphan["runtime"] = seen.runtime
        if seen.server_compiled:
            orphan.update(shadows=seen.shadows, reason=seen.reason, hint=seen.hint)
        status.orphans.append(orphan)
    status.total_bytes = sum(st.st_size for st in on_disk.values())
    status.blob_count = len(on_disk)
    return status
