"""Warm: compile a model version as the server would, and publish its blob whole.

The compile runs in a private staging folder on the cache filesystem. OpenVINO
names a by-path blob after the model path and properties, not the cache folder,
so the blob it leaves there is the one the server will look up; we then
``rename`` it into the cache directory, which readers see atomically. A
per-entry lock makes N concurrent warm-ups compile once; the manifest lock
serialises publishing with invalidation.

Warming an entry whose files, blob, runtime and CPU are unchanged does no
compile and imports no OpenVINO.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..protocol import ErrorCode, WarmStatus
from ..protocol.location import Location
from . import hostfacts, trace
from .blobfile import BlobHeaderError, blob_checksum, read_header
from .cachedir import CacheDir
from .devices import DeviceInfo, check_properties, compile_error, describe
from .encryption import SEALED_OTHER_KEY, SEALED_WITH_KEY, key_id, load_key, probe_blob
from .errors import (
    CompileFailed,
    DeviceCannotCache,
    DiskFull,
    KeyMismatch,
    ManifestCorrupt,
    NoBlobWritten,
    OvcacheError,
    SpecConflict,
    UsageError,
    this_host,
)
from .filestat import model_file_stat, restat_after_link, stat_identity
from .fingerprint import Fingerprint, Fingerprinter, StatCache
from .fsutil import free_bytes, fsync_dir, fsync_file, os_error, unlink_inside
from .loadcheck import LoadCheck, run_load_checks
from .manifest import Entry, Manifest, entry_key, utcnow
from .permissions import apply_file_mode
from .repository import ModelVersion
from .spec import CacheSpec

log = logging.getLogger(__name__)

WARMED, UNCHANGED, SKIPPED, FAILED = WarmStatus.WARMED, WarmStatus.UNCHANGED, WarmStatus.SKIPPED, WarmStatus.FAILED
REWRITTEN = "blob file was rewritten since it was published"


@dataclass
class WarmResult:
    """What a warm did with one (model, version, device): the ``warm_item`` shape."""

    model: str
    version: int | None  # None for a model with no usable version folder at all
    device: str
    status: str
    reason: str = ""
    spec_id: str | None = None
    spec: str = ""
    blob: str | None = None
    size: int | None = None
    compile_seconds: float | None = None
    seconds: float = 0.0
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    error: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    # Every blob of an entry one load wrote several of (``blob`` is the first).
    blobs: list[str] | None = None

    @property
    def ok(self) -> bool:
        """Whether the item did not fail."""
        return self.status in (WARMED, UNCHANGED, SKIPPED)

    def to_json(self) -> dict[str, Any]:
        """The item as the ``warm_item`` shape."""
        return asdict(self)


def stamp_published(root: Path, entry: Entry) -> None:
    """Record each of the entry's blobs as it now is in the cache directory, and when it was published.

    Called right after the blobs are renamed into place, by the warm's publish and by the roll-forward of a
    killed run's publish: later, :meth:`Warmer.why_stale` compares them to notice a blob someone (a server
    with another key) rewrote, and verify re-hashes only a blob whose stat moved.

    :param root: the cache directory the blobs are now in.
    :param entry: the entry being published; its ``blob_stat``, its extra blobs' and ``published_ns`` are set.
    """
    entry.blob_stat = stat_identity(root / entry.blob)
    for record in entry.extra_blobs:
        record["blob_stat"] = stat_identity(root / record["blob"])
    entry.published_ns = entry.blob_stat[2]


def refuse_cache_inside(cache_root: Path, repository_root: Path, where: Location | None = None) -> None:
    """A cache directory inside the model repository is refused before anything is compiled.

    Inside a version folder, the fingerprint would cover the blobs themselves, so
    every warm would see "model files changed" and recompile forever; anywhere in
    the repository, the cache would be listed as a model, or served as one.
    Both paths are resolved first, so a link does not hide the nesting.

    :param cache_root: the cache directory; it need not exist yet.
    :param repository_root: the model repository root.
    :param where: coordinates for the :class:`UsageError` raised; ``None`` when none are known yet.
    """
    cache_real = os.path.realpath(cache_root)
    repo_real = os.path.realpath(repository_root)
    if cache_real == repo_real or cache_real.startswith(repo_real.rstrip(os.sep) + os.sep):
        raise UsageError(
            f"cache directory {cache_root} is inside the model repository {repository_root}",
            hint="put the cache outside the repository (for example /var/cache/openvino), then warm again",
            where=where,
        )


class Warmer:
    """Warms entries into one cache directory; reuse one instance for many entries (it caches devices and stats).

    Call :meth:`close` after the last entry (:func:`warm_many` does) to save the stat cache.

    :param cache: the checked, writable cache directory the blobs are published into.
    :param repository_root: the model repository the versions come from: a cache inside it is refused,
        model files may link anywhere inside it, and each entry records it so that a rewarm finds the model
        again. ``None`` (a rewarm of entries that recorded none) confines links to each version folder.
    :param force: compile and publish even when the entry is up to date (rewarm uses it for entries verify refused).
    :param on_no_cache: ``fail`` or ``skip`` (reported as skipped, not failed) an item whose device cannot cache
        or whose compile wrote no blob.
    :param confirm: after publishing (or finding an entry current), load the blob in a fresh process following
        the spec's profile and fail the item unless it comes from the cache.
    :param describe_device: how a device is described (a seam for tests; default :func:`.devices.describe`).
    """

    def __init__(
        self,
        cache: CacheDir,
        *,
        repository_root: Path | None = None,
        force: bool = False,
        on_no_cache: str = "fail",
        confirm: bool = False,
        describe_device: Callable[[str, Any, Location], DeviceInfo] | None = None,
    ) -> None:
        if on_no_cache not in ("fail", "skip"):
            raise UsageError(f"--no-cache-device must be fail or skip, not {on_no_cache!r}")
        self.cache = cache
        self.repository_root = repository_root
        if repository_root is not None:
            refuse_cache_inside(cache.root, repository_root, cache.where)
        self.force = force
        self.on_no_cache = on_no_cache
        self.confirm = confirm
        self._describe = describe_device or describe
        self._core: Any = None
        self._devices: dict[str, DeviceInfo] = {}
        self.fingerprinter = Fingerprinter(StatCache.load(cache.stat_cache_path, mode=cache.policy.file_mode))

    # -- public ----------------------------------------------------------------------------
    def warm(self, version: ModelVersion, spec: CacheSpec) -> WarmResult:
        """Warm one (model version, spec); a failure the agent knows (its own errors, OS errors) comes back as a result.

        So one bad model or device does not stop a run over many: the caller reports each item's status.
        Anything else (a bug, an interrupt) propagates: the agent ends with a traceback, which the hook reports as a crash.

        :param version: the model version folder to compile.
        :param spec: how the server compiles it (device, properties, cache mode, key, profile).
        """
        start = time.perf_counter()
        where = Location(host=this_host(), model=version.model, version=version.version, device=spec.device)
        result = WarmResult(version.model, version.version, spec.device, FAILED, spec=spec.label())
        try:
            self._warm(version, spec, where, result)
        except OvcacheError as exc:
            exc.at(where)
            result.status, result.reason, result.error = FAILED, exc.one_line(), exc.to_json()
            if exc.code in (ErrorCode.DEVICE_CANNOT_CACHE, ErrorCode.NO_BLOB) and self.on_no_cache == "skip":
                result.status = SKIPPED
                result.error = None
        except OSError as exc:
            err = os_error(exc, "warm failed", where)
            result.status, result.reason, result.error = FAILED, err.one_line(), err.to_json()
        result.seconds = round(time.perf_counter() - start, 4)
        result.warnings.extend(self.cache.warnings)
        self.cache.warnings.clear()
        return result

    def close(self) -> None:
        """Save the fingerprint stat cache; call once after the last item."""
        self.fingerprinter.cache.save()

    # -- steps -----------------------------------------------------------------------------
    def _warm(self, version: ModelVersion, spec: CacheSpec, where: Location, result: WarmResult) -> None:
        if version.format == "onnx" and spec.cache_mode == "OPTIMIZE_SIZE":
            raise UsageError(
                "CACHE_MODE=OPTIMIZE_SIZE never hits for ONNX models (OpenVINO recompiles every time)",
                hint="use --cache-mode OPTIMIZE_SPEED for ONNX, or convert the model to IR",
                where=where,
            )
        secret = load_key(spec.encryption_key_file, where) if spec.encryption_key_file else None
        kid = key_id(secret) if secret is not None else None
        spec_id = spec.spec_id(kid)
        result.spec_id = spec_id
        key = entry_key(version.model, version.version, spec.device, spec_id)
        fingerprint = self.fingerprinter.fingerprint(version.directory, where, self.repository_root)
        with self.cache.entry_lock(key):
            entry = self._current_entry(key)
            if entry is not None and not self.force:
                why_not = self.why_stale(entry, fingerprint, version)
                if why_not == REWRITTEN and secret is not None:
                    self._refuse_foreign_key_write(entry, secret, where)
                if why_not is None:
                    result.status, result.reason = UNCHANGED, "blob is up to date; nothing compiled"
                    result.blob, result.size = entry.blob, entry.size
                    if self.confirm:
                        self._confirm(entry, spec, result, where)
                    return
                result.reason = why_not
            self._compile_and_publish(version, spec, kid, spec_id, key, fingerprint, entry, where, result)
        if self.confirm and result.blob:
            published = self._current_entry(key)
            if published is not None:
                self._confirm(published, spec, result, where)

    @trace.traced("warm.current_entry")
    def _current_entry(self, key: str) -> Entry | None:
        try:
            return self.cache.read_manifest().entries.get(key)
        except ManifestCorrupt as exc:
            # Not trusted: the publish step sets it aside (with a warning) and starts afresh.
            self.cache.warnings.append(exc.message)
            return None

    def why_stale(self, entry: Entry, fingerprint: Fingerprint, version: ModelVersion) -> str | None:
        """Why an existing entry must be rebuilt, or None if it is current. Costs stats, no OpenVINO.

        The reason becomes the warm result's reason, so it says what changed; a blob rewritten in place is
        :data:`REWRITTEN`, which the caller checks for a server writing under another key.

        :param entry: the manifest's entry for this (model, version, device, spec).
        :param fingerprint: the version folder's fingerprint as it is now.
        :param version: the model version as found in the repository now (its model file may have moved).
        """
        if entry.fingerprint != fingerprint.digest:
            return "model files changed since the blob was built"
        if entry.model_path != str(version.model_file):
            return f"model path changed from {entry.model_path}"
        if entry.model_file_stat != model_file_stat(entry.spec.get("compile_mode", "path"), version.model_file):
            return "model file timestamp changed (same bytes); OpenVINO would reject the blob"
        blob = self.cache.root / entry.blob
        try:
            identity = stat_identity(blob)
        except FileNotFoundError:
            return "blob is missing"
        if identity != entry.blob_stat:
            return REWRITTEN
        for record in entry.extra_blobs:
            try:
                if stat_identity(self.cache.root / record["blob"]) != record["blob_stat"]:
                    return REWRITTEN
            except FileNotFoundError:
                return f"blob {record['blob']} (one of the entry's {len(entry.all_blobs)}) is missing"
        if entry.runtime_dist != hostfacts.runtime_dist_version():
            return f"runtime changed from {entry.runtime_dist} to {hostfacts.runtime_dist_version()}"
        if entry.cpu != hostfacts.cpu_signature():
            return "host CPU changed since the blob was built"
        return None

    def _refuse_foreign_key_write(self, entry: Entry, key: bytes, where: Location) -> None:
        """Refuse to rebuild a blob another process rewrote under another key (or none).

        OpenVINO with a key that does not open a blob recompiles and rewrites it in
        place of ours; rebuilding it with our key would make the server rewrite it
        again at its next start, and so on forever. A person has to give both the
        same key; ``--force`` then rebuilds.
        """
        try:
            sealed = probe_blob(self.cache.root / entry.blob, key)
        except (OSError, ValueError):
            return
        if sealed == SEALED_WITH_KEY:
            return
        how = "under another encryption key" if sealed == SEALED_OTHER_KEY else "without encryption"
        raise KeyMismatch(
            f"blob {entry.blob} was rewritten {how} by another process (a server with another key?); "
            "rebuilding it would only make the two overwrite each other",
            where,
            hint="give the serving application the agent's key (or the agent the server's), then warm with --force",
        )

    @trace.traced("warm.device")
    def _device(self, device: str, where: Location) -> DeviceInfo:
        if device not in self._devices:
            if self._core is None:
                import openvino as ov

                self._core = ov.Core()
            self._devices[device] = self._describe(device, self._core, where)
        return self._devices[device]

    def _compile_and_publish(
        self,
        version: ModelVersion,
        spec: CacheSpec,
        kid: str | None,
        spec_id: str,
        key: str,
        fingerprint: Fingerprint,
        previous: Entry | None,
        where: Location,
        result: WarmResult,
    ) -> None:
        from .compiler import serving_compile

        info = self._device(spec.device, where)
        if not info.can_cache:
            raise DeviceCannotCache(spec.device, where)
        properties = spec.property_dict
        if spec.profile == "genai":
            from .genai import PIPELINE_PROPERTIES

            # The pipeline's own settings are GenAI's, not the device's: GenAI consumes them before compile_model.
            properties = {k: v for k, v in properties.items() if k not in PIPELINE_PROPERTIES}
        check_properties(info, properties, where)
        with self.cache.staging() as stage:
            try:
                compiled = serving_compile(self._core, version.model_file, spec, stage, where)
            except OvcacheError:
                raise
            except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError for everything
                raise compile_error(exc, where) from None
            compiled.compiled = None  # release the compiled model before moving its blobs
            staged_blobs = sorted(stage.glob("*.blob"))
            if not staged_blobs:
                self._no_blob(version, spec, where)
            records = []
            for staged in staged_blobs:
                try:
                    header = read_header(staged)
                except BlobHeaderError as exc:
                    raise CompileFailed(f"OpenVINO wrote a blob that does not parse ({staged.name}): {exc}", where) from None
                checksum = blob_checksum(staged)
                apply_file_mode(staged, self.cache.policy.blob_mode, self.cache.policy)
                fsync_file(staged)
                records.append((staged, header, checksum))
            primary, header, checksum = records[0]
            # The CPU blob of a composite load carries the instruction set; any blob the runtime.
            isa = next((h.isa for _, h, _ in records if h.isa), None)
            entry = Entry(
                model=version.model,
                version=version.version,
                device=spec.device,
                spec_id=spec_id,
                spec=spec.to_json(),
                model_path=str(version.model_file),
                model_dir=str(version.directory),
                fingerprint=fingerprint.digest,
                blob=primary.name,
                size=primary.stat().st_size,
                checksum=checksum,
                blob_stat=[],
                runtime=header.runtime_version,
                runtime_dist=hostfacts.runtime_dist_version(),
                isa=isa,
                cpu=hostfacts.cpu_signature(),
                key_id=kid,
                repository=str(self.repository_root) if self.repository_root else None,
                model_file_stat=model_file_stat(spec.compile_mode, version.model_file),
                compile_seconds=round(compiled.seconds, 4),
                extra_blobs=[
                    {"blob": p.name, "size": p.stat().st_size, "checksum": c, "blob_stat": []} for p, _, c in records[1:]
                ],
            )
            self.publish_entry(entry, [p for p, _, _ in records], stage, previous, where, result)
        self._remember_isa(isa)
        result.status = WARMED
        result.reason = result.reason or "compiled and published"
        result.blob, result.size, result.compile_seconds = entry.blob, entry.total_size, entry.compile_seconds
        if entry.extra_blobs:
            result.blobs = entry.all_blobs

    def publish_entry(
        self, entry: Entry, staged: list[Path], stage: Path, previous: Entry | None, where: Location, result: WarmResult
    ) -> None:
        """Publish staged blobs as ``entry``: record it in the manifest and rename the blobs into place, under the lock.

        The one publish of the package: a warm calls it after its compile, an install (:mod:`.install`) after
        fetching a blob set from a store. The caller holds the entry lock; blobs of ``previous`` that no entry
        references any more are removed.

        :param entry: the new entry (its ``blob_stat`` is filled in here).
        :param staged: the entry's blobs in the staging folder, the primary one first.
        :param stage: the staging folder (journaled for a multi-blob publish).
        :param previous: the entry this one replaces, or None.
        :param where: coordinates for errors.
        :param result: the item's result; a superseded entry's warning is added to it.
        """
        with self.cache.update_manifest(critical=True) as manifest:
            for superseded in self._resolve_conflicts(manifest, entry, where):
                del manifest.entries[superseded.key]
                source = entry.spec.get("encryption_key_file")
                result.warnings.append(
                    f"entry {superseded.key} (key id {superseded.key_id}) is superseded: the key from "
                    f"{'standard input' if source == '-' else source} is now key id {entry.key_id}, and both name blob {entry.blob}"
                )
            self._publish(manifest, entry, staged, stage, where)
            manifest.entries[entry.key] = entry
            self._update_sharers(manifest, entry)
            if previous is not None:
                for name in previous.all_blobs:
                    if name not in entry.all_blobs and not manifest.referencing(name):
                        unlink_inside(self.cache.root, name)

    def _publish(self, manifest: Manifest, entry: Entry, staged: list[Path], stage: Path, where: Location) -> None:
        """Rename the staged blobs into the cache directory (the caller holds the manifest lock).

        One blob is one rename, which readers see atomically. Several blobs cannot
        appear at once, so the set is journaled in the manifest first: a run killed
        between the renames leaves the journal and the staged files, and the next
        writing run rolls the publish forward (:meth:`CacheDir.recover_publish`)
        before anything else, so the directory ends with the whole new set, never a
        mix. SIGTERM and friends are held meanwhile (``critical``); SIGKILL is what
        the journal is for.
        """
        if len(staged) > 1:
            manifest.publishing = {"key": entry.key, "entry": entry.to_json(), "stage": stage.name, "blobs": entry.all_blobs}
            manifest.save(self.cache.where)
        try:
            with trace.span("warm.publish.rename", blobs=len(staged)):
                for path in [*staged[1:], staged[0]]:
                    os.replace(path, self.cache.root / path.name)
            with trace.span("warm.publish.fsync_dir"):
                fsync_dir(self.cache.root)
        except OSError as exc:
            raise os_error(exc, f"cannot publish blob(s) {', '.join(p.name for p in staged)}", where) from exc
        stamp_published(self.cache.root, entry)
        manifest.publishing = None

    def _no_blob(self, version: ModelVersion, spec: CacheSpec, where: Location) -> None:
        need = sum(p.stat().st_size for p in version.directory.iterdir() if p.is_file()) + (1 << 20)
        free = free_bytes(self.cache.root)
        if free < need:
            raise DiskFull(
                f"OpenVINO wrote no blob: {free} bytes free on the cache filesystem, about {need} needed",
                where,
            )
        if spec.profile == "python":
            raise NoBlobWritten(
                f"python loader {spec.profile_options.get('loader')} returned, but wrote no cache blob",
                where,
                hint="the loader must pass the properties it is given (CACHE_DIR among them) to compile_model",
            )
        if spec.profile == "optimum":
            raise NoBlobWritten(
                f"optimum profile: {spec.profile_options.get('model_class')}.from_pretrained returned, but wrote no cache blob",
                where,
            )
        if spec.profile == "genai":
            raise NoBlobWritten(
                f"genai profile: {spec.profile_options.get('pipeline')} was constructed, but wrote no cache blob", where
            )
        raise NoBlobWritten("the compile succeeded but OpenVINO wrote no cache blob", where)

    @staticmethod
    def _resolve_conflicts(manifest: Manifest, entry: Entry, where: Location) -> list[Entry]:
        """Entries the new blob supersedes (same call, rotated key); raise for a real conflict.

        Encryption does not change a blob's name, so the same compile under a new
        key replaces the old blob. When the key source is the same (the key file
        was rotated, or the key comes on standard input both times) the old entry
        is superseded. Two key sources, or two cache modes, on one blob name would
        overwrite each other forever: that is refused.
        """
        superseded = []
        others = {o.key: o for name in entry.all_blobs for o in manifest.referencing(name)}
        for other in others.values():
            if other.key == entry.key:
                continue
            same_mode = other.spec.get("cache_mode") == entry.spec.get("cache_mode")
            if same_mode and other.key_id == entry.key_id:
                continue
            rotated = (
                same_mode
                and other.key_id is not None
                and entry.key_id is not None
                and (other.model, other.version, other.device, other.model_path)
                == (entry.model, entry.version, entry.device, entry.model_path)
                and other.spec == entry.spec
            )
            if rotated:
                superseded.append(other)
                continue
            raise SpecConflict(
                f"blob {entry.blob} is already {other.key}'s, which has another cache mode or key; they would overwrite each other",
                where,
            )
        return superseded

    @staticmethod
    def _update_sharers(manifest: Manifest, entry: Entry) -> None:
        """Entries that share a blob name share its bytes: the new blob is theirs too."""
        for other in manifest.referencing(entry.blob):
            if other.key == entry.key or other.blob != entry.blob or other.extra_blobs or entry.extra_blobs:
                continue
            other.size, other.checksum, other.blob_stat = entry.size, entry.checksum, entry.blob_stat
            other.published_ns = entry.published_ns  # a read before this publish is not a read of these bytes
            other.runtime, other.runtime_dist, other.isa, other.cpu = entry.runtime, entry.runtime_dist, entry.isa, entry.cpu
            if other.model_path == entry.model_path:
                other.fingerprint = entry.fingerprint

    @trace.traced("warm.remember_isa")
    def _remember_isa(self, isa: str | None) -> None:
        if not isa:
            return
        try:
            hostfacts.write_host_facts(self.cache.host_facts_path, isa, self.cache.policy.file_mode)
        except Exception:  # noqa: BLE001 - host facts are a cache; verify re-probes without them
            pass

    def _confirm(self, entry: Entry, spec: CacheSpec, result: WarmResult, where: Location) -> None:
        """Load the published blob in a fresh process following the entry's profile; it must come from cache.

        This proves the profile's call loads the blob, not that the server does:
        only the evidence (:mod:`.evidence`) speaks for the server.
        """
        profile = entry.spec.get("profile") or "openvino"
        with self.cache.staging() as scratch:
            check = LoadCheck(
                entry.key,
                entry.model_path,
                spec.to_json(),
                str(self.cache.root / entry.blob),
                extra=[str(self.cache.root / name) for name in entry.all_blobs[1:]],
            )
            outcome = run_load_checks([check], scratch)[entry.key]
        result.loaded_from_cache, result.load_ms = outcome.loaded_from_cache, outcome.load_ms
        if outcome.error or not outcome.loaded_from_cache:
            why = outcome.error or f"a compile following profile {profile} did not load it from cache (LOADED_FROM_CACHE=False)"
            hint = "the serving call and the warm-up spec differ; check path, device, properties and cache mode"
            if profile == "genai" and not outcome.error:
                # Measured (core/genai.py): LLMPipeline's default paged-attention backend replaces its blob on every load.
                why = "LLMPipeline replaced it on load instead of importing it (a cache miss)"
                hint = (
                    "with openvino-genai 2026.4 on CPU only ATTENTION_BACKEND=SDPA loads from cache; see docs/serving-profiles.md"
                )
            err = CompileFailed(f"blob {entry.blob} was published but {why}", where, hint=hint)
            result.status, result.reason, result.error = FAILED, err.one_line(), err.to_json()
            return
        confirmed = f"a compile following profile {profile} loads from cache ({outcome.load_ms or 0:.1f} ms)"
        result.reason = f"{result.reason}; {confirmed}" if result.reason else confirmed
        with self.cache.update_manifest() as manifest:
            current = manifest.entries.get(entry.key)
            if current is not None and current.blob == entry.blob:
                current.verified, current.load_ms = utcnow(), outcome.load_ms
                current.blob_stat = restat_after_link(self.cache.root / current.blob, current.blob_stat)


WarmItem = tuple[ModelVersion, CacheSpec]


def warm_many(
    warmer: Warmer,
    items: list[WarmItem | WarmResult],
    progress: Callable[[WarmResult], None] | None = None,
    starting: Callable[[str], None] | None = None,
) -> list[WarmResult]:
    """Warm each item in order; a failure planned beforehand is passed through as its result.

    ``starting`` is told the item about to be worked on ("mlp@2 CPU"), so a progress
    display names what is compiling now, not what just finished.

    :param warmer: the warmer for the cache directory; it is closed (stat cache saved) at the end, even on error.
    :param items: (model version, spec) pairs to warm, or results the plan already failed (kept in their place).
    :param progress: called with each item's result as it is known, in order.
    :param starting: called with a short label before each item is warmed.
    """
    results = []
    try:
        for item in items:
            if starting is not None and not isinstance(item, WarmResult):
                version, spec = item
                starting(f"{version.model}@{version.version} {spec.device}")
            result = item if isinstance(item, WarmResult) else warmer.warm(*item)
            results.append(result)
            if progress is not None:
                progress(result)
    finally:
        warmer.close()
    return results
