"""Put a verified entry's blobs into a blob store, and install a stored set on another host of its class.

**Put** (the builder): a manifest entry goes to the store only if it is whole and current here: each
blob hashes to the manifest's checksum, the model files still have the entry's fingerprint (and, by
path, its model file size and mtime), and the entry was built by this host's runtime and CPU, so the
class key this host reports now is the one the blobs were compiled for.

**Install** (every other host): for each (model version, spec) a warm would compile, fetch the set filed
under this host's class key, then check, in order, what a blob depends on besides the call: the set's
checksum (in the store), the model fingerprint, the model path, the model file's size and mtime
(by-path compiles: the blob header records them), each blob's own checksum and header runtime. Then it
publishes through the warm's own publish (:meth:`.warm.Warmer.publish_entry`) and proves the result
with a load in a fresh process (``LOADED_FROM_CACHE``). Anything that differs falls back to the warm's
local compile, and the result says why in one line naming host, model, version, device and class.
Nothing is unpublished before the new set is whole, so a failed install loses nothing already cached.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import ErrorCode
from ..protocol.codes import InstallStatus, PutStatus
from ..protocol.location import Location
from . import hostfacts
from .blobfile import BlobHeaderError, blob_checksum, read_header
from .blobstore import BlobStore, SetCorrupt, SetKey, StoreError
from .cachedir import CacheDir
from .devices import DeviceInfo, classify, describe
from .encryption import key_id, load_key
from .errors import OvcacheError, this_host
from .filestat import model_file_stat
from .fingerprint import Fingerprinter, StatCache
from .fsutil import os_error
from .manifest import Entry, entry_key
from .permissions import apply_file_mode
from .repository import ModelVersion
from .spec import CacheSpec
from .warm import WARMED, Warmer, WarmResult

MTIME_HINT = "copy releases preserving mtimes (rsync -a, tar)"


@dataclass
class PutResult:
    """What ``store-put`` did with one manifest entry: the ``store_put_item`` shape."""

    model: str
    version: int
    device: str
    spec_id: str
    status: str
    reason: str = ""
    class_key: str | None = None
    object: str | None = None
    size: int | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The item as the ``store_put_item`` shape."""
        return asdict(self)


@dataclass
class InstallResult:
    """What ``install`` did with one (model, version, device): the ``install_item`` shape.

    ``status`` is ``installed`` (the store's set, proven by a load from cache), ``warmed`` (fell back to a
    local compile: ``fallback`` says why), ``unchanged`` (already current here) or ``failed``.
    """

    model: str
    version: int | None
    device: str
    status: str
    reason: str = ""
    class_key: str | None = None
    spec_id: str | None = None
    object: str | None = None
    blob: str | None = None
    blobs: list[str] | None = None
    size: int | None = None
    fallback: str | None = None
    compile_seconds: float | None = None
    seconds: float = 0.0
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether the item ended with a current, published entry (installed, warmed or unchanged)."""
        return self.status != InstallStatus.FAILED

    def to_json(self) -> dict[str, Any]:
        """The item as the ``install_item`` shape."""
        return asdict(self)


def set_meta(entry: Entry, device: DeviceInfo) -> dict[str, Any]:
    """The metadata a stored set carries: what an installing host checks before it trusts the blobs.

    Only facts of the set (no time, no host name): the same entry put twice gives the same bytes.

    :param entry: the manifest entry put.
    :param device: the device it was compiled for, classified (:func:`.devices.classify`).
    """
    return {
        "format": 1,
        "model": entry.model,
        "version": entry.version,
        "device": entry.device,
        "spec_id": entry.spec_id,
        "spec": entry.spec,
        "profile": entry.spec.get("profile") or "openvino",
        "class_key": device.class_key,
        "class_parts": device.class_parts,
        "fingerprint": entry.fingerprint,
        "model_path": entry.model_path,
        "model_file_stat": entry.model_file_stat,
        "runtime": entry.runtime,
        "runtime_dist": entry.runtime_dist,
        "isa": entry.isa,
        "key_id": entry.key_id,
        "compile_seconds": entry.compile_seconds,
    }


def _classified(device: str, core: Any, facts: Path, where: Location) -> DeviceInfo:
    info = describe(device, core, where)
    return classify(info, core, facts)


def put_entries(cache: CacheDir, store: BlobStore, entries: list[Entry]) -> list[PutResult]:
    """Store each entry that is whole and current on this host; the others come back failed, saying why.

    :param cache: the cache directory the entries are in.
    :param store: the store to put them into (checked writable by the caller).
    :param entries: the manifest entries to put.
    """
    import openvino as ov

    core = ov.Core()
    results = []
    fingerprinter = Fingerprinter(StatCache.load(cache.stat_cache_path, mode=cache.policy.file_mode))
    classes: dict[str, DeviceInfo] = {}
    try:
        for entry in entries:
            where = Location(host=this_host(), model=entry.model, version=entry.version, device=entry.device)
            result = PutResult(entry.model, entry.version, entry.device, entry.spec_id, PutStatus.FAILED)
            try:
                why = _why_not_put(cache, entry, fingerprinter, where)
                if why is not None:
                    raise OvcacheError(
                        f"entry {entry.key} is not put into the store: {why}",
                        where,
                        "warm it again (ovcache warm --confirm), then put it",
                        ErrorCode.INTEGRITY,
                    )
                if entry.device not in classes:
                    classes[entry.device] = _classified(entry.device, core, cache.host_facts_path, where)
                info = classes[entry.device]
                stored = store.put(
                    SetKey(entry.model, entry.version, entry.spec_id, str(info.class_key)),
                    set_meta(entry, info),
                    [(cache.root / name, checksum) for name, checksum in _checksums(entry)],
                )
                result.status, result.class_key, result.object, result.size = (
                    PutStatus.STORED,
                    info.class_key,
                    stored.digest,
                    stored.size,
                )
                result.reason = f"stored as object {stored.digest[:16]} in {store.description}"
            except StoreError:
                raise
            except OvcacheError as exc:
                exc.at(where)
                result.reason, result.error = exc.one_line(), exc.to_json()
            except OSError as exc:
                err = os_error(exc, f"cannot put entry {entry.key}", where)
                result.reason, result.error = err.one_line(), err.to_json()
            results.append(result)
    finally:
        fingerprinter.cache.save()
    return results


def _checksums(entry: Entry) -> list[tuple[str, str]]:
    return [(entry.blob, entry.checksum), *((str(r["blob"]), str(r["checksum"])) for r in entry.extra_blobs)]


def _why_not_put(cache: CacheDir, entry: Entry, fingerprinter: Fingerprinter, where: Location) -> str | None:
    """Why an entry may not be shared, or None: it must be whole, current and built on this host's class."""
    for name, checksum in _checksums(entry):
        path = cache.root / name
        if not path.is_file():
            return f"blob {name} is missing"
        if blob_checksum(path) != checksum:
            return f"blob {name} does not match its checksum (corrupt or rewritten)"
    model_dir = Path(entry.model_dir)
    boundary = Path(entry.repository) if entry.repository else None
    if fingerprinter.fingerprint(model_dir, where, boundary).digest != entry.fingerprint:
        return "the model files changed since the blob was built"
    if entry.model_file_stat != model_file_stat(entry.spec.get("compile_mode", "path"), Path(entry.model_path)):
        return "the model file's size or mtime changed since the blob was built"
    if entry.runtime_dist != hostfacts.runtime_dist_version() or entry.cpu != hostfacts.cpu_signature():
        return "it was built by another runtime or CPU than this host's, so this host's class key does not describe it"
    return None


class Installer(Warmer):
    """Installs stored sets into one cache directory, falling back to the warm's compile when a check fails.

    :param cache: the checked, writable cache directory.
    :param store: the store to fetch sets from (checked readable by the caller).
    :param repository_root: the model repository (as for :class:`.warm.Warmer`).
    :param compile_if_unreachable: a store that cannot be reached is each item's fallback (it is
        compiled here, and says why) instead of an error that stops the install.
    :param describe_device: a seam for tests, as for :class:`.warm.Warmer`.
    """

    def __init__(
        self,
        cache: CacheDir,
        store: BlobStore,
        *,
        repository_root: Path | None = None,
        compile_if_unreachable: bool = False,
        describe_device: Callable[[str, Any, Location], DeviceInfo] | None = None,
    ) -> None:
        super().__init__(cache, repository_root=repository_root, confirm=True, describe_device=describe_device)
        self.store = store
        self.compile_if_unreachable = compile_if_unreachable
        self._classes: dict[str, DeviceInfo] = {}

    def install(self, version: ModelVersion, spec: CacheSpec) -> InstallResult:
        """Install one (model version, spec) from the store, or compile it here; never raises for a known failure.

        :param version: the model version folder the server loads.
        :param spec: how the server compiles it.
        """
        start = time.perf_counter()
        where = Location(host=this_host(), model=version.model, version=version.version, device=spec.device)
        result = InstallResult(version.model, version.version, spec.device, InstallStatus.FAILED)
        why: str | None = None
        force = False
        try:
            why, force = self._install(version, spec, where, result)
        except StoreError as exc:
            if not self.compile_if_unreachable:
                raise
            why = f"{exc.message}: compiled here instead"
        except OvcacheError as exc:
            exc.at(where)
            why = exc.message
        except OSError as exc:
            why = os_error(exc, "install failed", where).message
        if why is not None:
            self._fall_back(version, spec, where, result, why, force)
        result.seconds = round(time.perf_counter() - start, 4)
        result.warnings.extend(self.cache.warnings)
        self.cache.warnings.clear()
        return result

    def _label(self, where: Location, result: InstallResult) -> str:
        return f"{where.label()}, class {result.class_key or 'unknown'}"

    def _fall_back(
        self, version: ModelVersion, spec: CacheSpec, where: Location, result: InstallResult, why: str, force: bool
    ) -> None:
        """Compile locally as a warm does (``force`` when the installed set did not load from cache)."""
        result.fallback = f"{self._label(where, result)}: not installed from the store: {why}"
        self.force = force
        try:
            warmed = self.warm(version, spec)
        finally:
            self.force = False
        self._take(result, warmed)
        if warmed.ok:
            result.status = InstallStatus.WARMED if warmed.status == WARMED else InstallStatus.UNCHANGED
            result.reason = f"{result.fallback}; compiled locally instead"
        else:
            result.status, result.reason, result.error = InstallStatus.FAILED, warmed.reason, warmed.error

    @staticmethod
    def _take(result: InstallResult, warmed: WarmResult) -> None:
        result.spec_id, result.blob, result.blobs, result.size = warmed.spec_id, warmed.blob, warmed.blobs, warmed.size
        result.compile_seconds, result.loaded_from_cache, result.load_ms = (
            warmed.compile_seconds,
            warmed.loaded_from_cache,
            warmed.load_ms,
        )
        result.warnings.extend(warmed.warnings)

    def _class_of(self, device: str, where: Location) -> DeviceInfo:
        if device not in self._classes:
            self._classes[device] = classify(self._device(device, where), self._core, self.cache.host_facts_path)
        return self._classes[device]

    def _install(self, version: ModelVersion, spec: CacheSpec, where: Location, result: InstallResult) -> tuple[str | None, bool]:
        """Fetch, check and publish; returns (why to fall back, whether the fallback must force) or (None, False)."""
        kid = key_id(load_key(spec.encryption_key_file, where)) if spec.encryption_key_file else None
        spec_id = spec.spec_id(kid)
        result.spec_id = spec_id
        key = entry_key(version.model, version.version, spec.device, spec_id)
        fingerprint = self.fingerprinter.fingerprint(version.directory, where, self.repository_root)
        info = self._class_of(spec.device, where)
        result.class_key = info.class_key
        set_key = SetKey(version.model, version.version, spec_id, str(info.class_key))
        with self.cache.entry_lock(key):
            previous = self._current_entry(key)
            if previous is not None and self.why_stale(previous, fingerprint, version) is None:
                result.status, result.reason = InstallStatus.UNCHANGED, "blob is up to date; nothing fetched"
                result.blob, result.size = previous.blob, previous.size
                return None, False
            with self.cache.staging() as stage:
                try:
                    stored = self.store.get(set_key, stage)
                except SetCorrupt as exc:
                    return f"{exc.message} (refused)", False
                if stored is None:
                    others = sorted(
                        s.key.class_key
                        for s in self.store.list(version.model)
                        if (s.key.version, s.key.spec_id) == (version.version, spec_id)
                    )
                    held = f" (it holds class {', '.join(others)})" if others else ""
                    return f"store {self.store.description} has no set for this spec and class{held}", False
                result.object = stored.digest
                why = self._differs(stored.meta, version, spec, fingerprint.digest, info)
                if why is not None:
                    return why, False
                entry = self._entry(stored.meta, version, spec, kid, spec_id, fingerprint.digest, stage, where)
                if isinstance(entry, str):
                    return entry, False
                staged = [stage / name for name in entry.all_blobs]
                self.publish_entry(entry, staged, stage, previous, where, _sink(result))
        self._remember_isa(entry.isa)
        checked = WarmResult(version.model, version.version, spec.device, WARMED)
        self._confirm(entry, spec, checked, where)
        result.loaded_from_cache, result.load_ms = checked.loaded_from_cache, checked.load_ms
        if checked.status != WARMED:
            return f"the installed set does not load from cache in a fresh process ({checked.reason})", True
        result.status = InstallStatus.INSTALLED
        result.blob, result.size = entry.blob, entry.total_size
        result.blobs = entry.all_blobs if entry.extra_blobs else None
        result.reason = (
            f"installed object {stored.digest[:16]} from {self.store.description}; a compile following profile "
            f"{entry.spec.get('profile') or 'openvino'} loads from cache ({checked.load_ms or 0:.1f} ms)"
        )
        return None, False

    @staticmethod
    def _differs(meta: dict[str, Any], version: ModelVersion, spec: CacheSpec, fingerprint: str, info: DeviceInfo) -> str | None:
        """What this host has that the blobs were not built for, in one phrase with what to do; None if nothing."""
        name = version.model_file.name
        if meta.get("class_key") != info.class_key:
            return f"the set was built for class {meta.get('class_key')}, this host's device is class {info.class_key}"
        if meta.get("fingerprint") != fingerprint:
            return "the model files on this host differ from the ones the set was built from (copy the release again)"
        if meta.get("model_path") != str(version.model_file):
            return f"the set was built from {meta.get('model_path')}, this host has the model at {version.model_file} (keep the repository at one path on every host)"
        recorded = meta.get("model_file_stat")
        here = model_file_stat(spec.compile_mode, version.model_file)
        if recorded != here and recorded is not None and here is not None:
            if recorded[0] != here[0]:
                return f"{name} has another size on this host: copy the release again"
            return f"{name} has another mtime on this host: {MTIME_HINT}"
        if recorded != here:
            return f"the set's compile mode does not match this spec's ({spec.compile_mode})"
        return None

    def _entry(
        self,
        meta: dict[str, Any],
        version: ModelVersion,
        spec: CacheSpec,
        kid: str | None,
        spec_id: str,
        fingerprint: str,
        stage: Path,
        where: Location,
    ) -> Entry | str:
        """The manifest entry for the fetched blobs (checked one by one), or why they are refused."""
        records = []
        for record in meta["blobs"]:
            path = stage / str(record["name"])
            checksum = blob_checksum(path)
            if checksum != record["checksum"]:
                return f"blob {path.name} of the set does not match its recorded checksum (refused)"
            try:
                header = read_header(path)
            except BlobHeaderError as exc:
                return f"blob {path.name} of the set does not parse ({exc}) (refused)"
            apply_file_mode(path, self.cache.policy.blob_mode, self.cache.policy)
            records.append((path, header, checksum))
        (primary, header, checksum), extra = records[0], records[1:]
        return Entry(
            model=version.model,
            version=version.version,
            device=spec.device,
            spec_id=spec_id,
            spec=spec.to_json(),
            model_path=str(version.model_file),
            model_dir=str(version.directory),
            fingerprint=fingerprint,
            blob=primary.name,
            size=os.stat(primary).st_size,
            checksum=checksum,
            blob_stat=[],
            runtime=header.runtime_version,
            runtime_dist=hostfacts.runtime_dist_version(),
            isa=next((h.isa for _, h, _ in records if h.isa), None),
            cpu=hostfacts.cpu_signature(),
            key_id=kid,
            repository=str(self.repository_root) if self.repository_root else None,
            model_file_stat=model_file_stat(spec.compile_mode, version.model_file),
            compile_seconds=float(meta.get("compile_seconds") or 0.0),
            extra_blobs=[{"blob": p.name, "size": os.stat(p).st_size, "checksum": c, "blob_stat": []} for p, _, c in extra],
        )


def _sink(result: InstallResult) -> WarmResult:
    """A warm result whose warnings list is the install result's, for :meth:`.warm.Warmer.publish_entry`."""
    sink = WarmResult(result.model, result.version, result.device, WARMED)
    sink.warnings = result.warnings
    return sink
