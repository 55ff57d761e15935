"""The manifest: what the project manages in one cache directory.

One record per (model, version, device, spec) with the blob it produced and
everything needed to prove later that the blob is still the right one. The file
carries a digest of its entries; a manifest that does not parse, has the wrong
schema or fails its digest is *corrupt* and is never trusted silently.
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..protocol.location import Location
from . import trace
from .blobfile import is_blob_name
from .errors import ManifestCorrupt

MANIFEST_SCHEMA = 1


def utcnow() -> str:
    """Now in UTC as ISO 8601 to the second: the stamp entries and manifests record (``created``, ``updated``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def entry_key(model: str, version: int, device: str, spec_id: str) -> str:
    """The key a manifest files an entry under, ``model/version/device/spec_id``: one entry per compile call.

    :param model: the model name.
    :param version: the version number.
    :param device: the device name as the spec gives it.
    :param spec_id: :meth:`.spec.CacheSpec.spec_id` of the spec.
    """
    return f"{model}/{version}/{device}/{spec_id}"


@dataclass
class Entry:
    """One managed blob (or set of blobs from one load) and everything needed to prove later it is still right.

    Besides what was compiled (model, version, device, spec and its id), it records
    the version folder's content ``fingerprint``, the blob's size, ``checksum`` and
    stat, and the host it was made for: ``runtime`` (the runtime version the blob's
    header records), ``runtime_dist`` (the package version), ``isa`` and the ``cpu``
    signature. Verify compares each with what it finds now; :meth:`from_json` refuses
    anything malformed, since deletion follows the names recorded here.
    """

    model: str
    version: int
    device: str
    spec_id: str
    spec: dict[str, Any]
    model_path: str
    model_dir: str
    fingerprint: str
    blob: str
    size: int
    checksum: str
    # (size, mtime_ns, ctime_ns, inode) of the blob when it was published or last hashed:
    # an unchanged stat lets a quick verify skip re-hashing the whole blob.
    blob_stat: list[int]
    runtime: str
    runtime_dist: str | None
    isa: str | None
    cpu: str
    key_id: str | None = None
    repository: str | None = None
    # [size, whole-second mtime] of the model file for a by-path compile. OpenVINO
    # keys the blob's validity on exactly these (its header's file_info), so a
    # model file copied again with the same bytes but a new mtime makes the
    # server reject the blob and recompile, rewriting it in place.
    model_file_stat: list[int] | None = None
    compile_seconds: float = 0.0
    created: str = field(default_factory=utcnow)
    verified: str | None = None
    load_ms: float | None = None
    # The blob's ctime (ns) right after it was renamed into place: the moment it was
    # published, against which its access time tells whether anyone read it since.
    published_ns: int | None = None
    # The other blobs of a load that writes several (BATCH, HETERO, a library's loader):
    # each {"blob", "size", "checksum", "blob_stat"}; published, verified and removed with the
    # primary ``blob`` as one unit.
    extra_blobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The key this entry is filed under (:func:`entry_key`)."""
        return entry_key(self.model, self.version, self.device, self.spec_id)

    @property
    def where(self) -> Location:
        """Model, version and device, for error messages about this entry."""
        return Location(model=self.model, version=self.version, device=self.device)

    @property
    def all_blobs(self) -> list[str]:
        """Every blob file of this entry (one serving load may write several), the primary one first."""
        return [self.blob, *(b["blob"] for b in self.extra_blobs)]

    @property
    def total_size(self) -> int:
        """Bytes of all this entry's blobs: what removing it frees."""
        return self.size + sum(int(b["size"]) for b in self.extra_blobs)

    @property
    def published_at_ns(self) -> int | None:
        """When the blob was published (ctime after the rename); for older entries, the recorded stat's ctime."""
        if self.published_ns is not None:
            return self.published_ns
        return self.blob_stat[2] if len(self.blob_stat) >= 3 else None

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON-ready dict (a shallow copy: cheap for a manifest of thousands)."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        """An entry from its JSON form; ``ValueError`` for anything the agent could trip over later.

        Unknown keys are dropped, so a newer agent's manifest still reads.

        :param data: one value of the manifest's ``entries`` object.
        """
        if not isinstance(data, dict) or not data.keys() >= _REQUIRED:
            lacking = sorted(_REQUIRED - set(data)) if isinstance(data, dict) else ["everything"]
            raise ValueError(f"entry lacks {', '.join(lacking)}")
        known = {k: v for k, v in data.items() if k in _KNOWN}
        for name, value in known.items():
            if not _FIELD_CHECKS[name](value):
                raise ValueError(f"entry field {name} has the wrong type or value")
        if not is_blob_name(known["blob"]):
            # Never a path, never another file of the cache directory: deletion follows this name.
            raise ValueError(f"entry names {known['blob']!r}, which is not a <hash>.blob file name")
        return cls(**known)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _number(v: Any) -> bool:
    return (_int(v) or isinstance(v, float)) and v == v and abs(v) != float("inf")


def _ints(v: Any) -> bool:
    return isinstance(v, list) and all(_int(x) for x in v)


def _spec(v: Any) -> bool:
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        return False
    props = v.get("properties", {})
    if props is not None and not (isinstance(props, dict) and all(isinstance(x, str) for kv in props.items() for x in kv)):
        return False
    options = v.get("profile_options")
    if options is not None and not isinstance(options, dict):
        return False
    return all(
        _opt_str(v.get(k)) for k in ("device", "compile_mode", "cache_mode", "model_file", "encryption_key_file", "profile")
    )


_FIELD_CHECKS: dict[str, Any] = {
    "model": _str,
    "version": lambda v: _int(v) and v > 0,
    "device": _str,
    "spec_id": _str,
    "spec": _spec,
    "model_path": _str,
    "model_dir": _str,
    "fingerprint": _str,
    "blob": _str,
    "size": lambda v: _int(v) and v >= 0,
    "checksum": _str,
    "blob_stat": _ints,
    "runtime": _str,
    "runtime_dist": _opt_str,
    "isa": _opt_str,
    "cpu": _str,
    "key_id": _opt_str,
    "repository": _opt_str,
    "model_file_stat": lambda v: v is None or _ints(v),
    "compile_seconds": _number,
    "created": _str,
    "verified": _opt_str,
    "load_ms": lambda v: v is None or _number(v),
    "published_ns": lambda v: v is None or (_int(v) and v >= 0),
    "extra_blobs": lambda v: isinstance(v, list) and all(_blob_record(b) for b in v),
}


def _blob_record(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and isinstance(v.get("blob"), str)
        and is_blob_name(v["blob"])
        and _int(v.get("size"))
        and v["size"] >= 0
        and isinstance(v.get("checksum"), str)
        and _ints(v.get("blob_stat"))
    )


def _check_publishing(value: Any) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("key"), str) or not isinstance(value.get("stage"), str):
        raise ValueError("publishing journal is malformed")
    blobs = value.get("blobs")
    if not isinstance(blobs, list) or not all(isinstance(b, str) and is_blob_name(b) for b in blobs):
        raise ValueError("publishing journal names something that is not a blob")
    if os.sep in value["stage"] or value["stage"] in ("", ".", ".."):
        raise ValueError("publishing journal's staging folder is not a plain name")
    Entry.from_json(value.get("entry") or {})


_KNOWN = {f.name for f in fields(Entry)}
_REQUIRED = {f.name for f in fields(Entry) if f.default is MISSING and f.default_factory is MISSING}


@trace.traced("manifest.digest")
def _digest(entries: dict[str, Any], pending: list[str], publishing: dict[str, Any] | None = None) -> str:
    import blake3

    body: dict[str, Any] = {"entries": entries, "pending": pending}
    if publishing is not None:
        body["publishing"] = publishing  # only when present: manifests without one keep their digest
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "blake3:" + blake3.blake3(canon.encode()).hexdigest()


@dataclass
class Manifest:
    """The manifest file of one cache directory: its entries by key, plus the journals of unfinished work.

    ``generation`` counts saves, so a reader can tell the file changed. Read it with
    :meth:`load`, change it under the cache directory's lock (see
    :meth:`.cachedir.CacheDir.update_manifest`) and :meth:`save` it.
    """

    path: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    generation: int = 0
    # Blob names an invalidation has dropped from the entries but may not have
    # unlinked yet: a journal, so a run killed half-way is finished by the next.
    pending: list[str] = field(default_factory=list)
    # A publish of several blobs in progress: {"key", "entry", "stage", "blobs"}. Written
    # before the first rename, so a run killed between renames is rolled forward by the next.
    publishing: dict[str, Any] | None = None
    # Mode the file is written with: 0600, or 0640 when a serving group may read it.
    file_mode: int = field(default=0o600, compare=False)

    @classmethod
    def load(cls, path: Path, where: Location | None = None) -> Manifest:
        """Read the manifest; a missing one is empty, a damaged one raises :class:`ManifestCorrupt`.

        :param path: the manifest file.
        :param where: host (and model...) for the error.
        """
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path)
        return cls.parse(path, raw, where)

    @classmethod
    def parse(cls, path: Path, raw: bytes, where: Location | None = None) -> Manifest:
        """The manifest in ``raw``, checked whole: schema, digest, every entry and journal; else :class:`ManifestCorrupt`.

        :param path: where it was read from (kept, and named in the error).
        :param raw: the file's bytes.
        :param where: host (and model...) for the error.
        """
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
            if data.get("schema") != MANIFEST_SCHEMA:
                raise ValueError(f"schema {data.get('schema')!r}, expected {MANIFEST_SCHEMA}")
            entries = data.get("entries")
            if not isinstance(entries, dict):
                raise ValueError("entries is not an object")
            pending = data.get("pending", [])
            if not isinstance(pending, list) or not all(isinstance(p, str) for p in pending):
                raise ValueError("pending is not a list of blob names")
            if data.get("digest") != _digest(entries, pending, data.get("publishing")):
                raise ValueError("digest does not match its entries (edited or damaged)")
            parsed = {key: Entry.from_json(value) for key, value in entries.items()}
            for key, entry in parsed.items():
                if key != entry.key:
                    raise ValueError(f"entry {key} is filed under the wrong key")
            generation = data.get("generation", 0)
            if not _int(generation):
                raise ValueError("generation is not an integer")
            publishing = data.get("publishing")
            if publishing is not None:
                _check_publishing(publishing)
        except (ValueError, TypeError, AttributeError, RecursionError) as exc:
            raise ManifestCorrupt(f"manifest {path} is corrupt: {exc}", where) from None
        return cls(path, parsed, generation, pending, publishing)

    @trace.traced("manifest.save")
    def save(self, where: Location | None = None) -> None:
        """Write the manifest atomically with a new generation, timestamp and digest.

        :param where: host (and model...) for the error if it cannot be written.
        """
        entries = {key: entry.__dict__ for key, entry in sorted(self.entries.items())}
        self.generation += 1
        doc = {
            "schema": MANIFEST_SCHEMA,
            "generation": self.generation,
            "updated": utcnow(),
            "digest": _digest(entries, self.pending, self.publishing),
            "entries": entries,
            "pending": self.pending,
        }
        if self.publishing is not None:
            doc["publishing"] = self.publishing
        from .fsutil import atomic_write  # only writers need it; the serving helper only loads manifests

        # Compact: at thousands of entries, indentation triples the time to write it.
        atomic_write(
            self.path, json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(), self.file_mode, where
        )

    # -- queries ------------------------------------------------------------------
    def select(
        self,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
    ) -> list[Entry]:
        """The entries matching every filter given, in key order.

        :param model: only this model's entries; ``None`` for all models.
        :param version: only this version's; ``None`` for all.
        :param device: only this device's; ``None`` for all.
        """
        return [
            e
            for _, e in sorted(self.entries.items())
            if (model is None or e.model == model)
            and (version is None or e.version == version)
            and (device is None or e.device == device)
        ]

    def referencing(self, blob: str) -> list[Entry]:
        """The entries that own ``blob`` (as primary or extra): a blob is removed only when none is left.

        :param blob: a blob's file name.
        """
        return [e for e in self.entries.values() if blob in e.all_blobs]

    def blob_names(self) -> set[str]:
        """Every blob name the manifest accounts for, a publish in progress included; the rest are orphans."""
        names = {name for e in self.entries.values() for name in e.all_blobs}
        if self.publishing is not None:
            names.update(self.publishing["blobs"])  # not orphans: a publish is half-way through them
        return names
