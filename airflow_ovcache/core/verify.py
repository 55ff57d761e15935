"""Verify: would each managed blob serve the model files deployed now, on this host?

Checks run cheapest first and stop at the first failure, so each entry gets
exactly one status and a reason:

======================  ==========================================================
``ok``                  present, intact, this runtime, this CPU, current files
``missing``             the blob file is gone
``corrupt``             truncated, not a blob, or bytes differ from when published
``unreadable``          this user may not read the blob (run as the cache's owner)
``runtime-mismatch``    written by another OpenVINO build (it would be rewritten)
``isa-mismatch``        compiled for another CPU instruction set
``model-missing``       the model files it was built from are gone
``stale-model``         the model files changed (catches a same-size ``.bin`` swap,
                        which OpenVINO itself serves stale)
``key-mismatch``        the blob does not open with the agent's key: the key was rotated
                        (a warm fixes it), or another process with another key (or
                        none) rewrote it (a warm would only start a flip-flop)
``key-unavailable``     the agent cannot get the key the entry was written with
``device-missing``      the device is not on this host
``cannot-cache``        the device does not report EXPORT_IMPORT
``not-cached``          a compile following the entry's profile did not load it (load check)
``load-failed``         that compile failed or crashed (load check)
``output-mismatch``     cached and fresh compiles disagree (inference check)
``orphan``              a blob in the directory that no entry accounts for
======================  ==========================================================

A status speaks for the blob and for a compile following the entry's profile
(with a load check: "a compile following profile P loads from cache"), never
for the server. What speaks for the server is the *evidence* each row also
carries (:mod:`.evidence`): whether the blob was read since it was published
(``served``, ``not-served-yet``, ``unknown``), and, for an orphan written after a
warm-up, that a server compiled something no warm-up made
(``server_compiled``). Evidence never changes a status or the exit code: a
blob nobody has read yet is not a problem.

Without ``checksum="always"`` a blob is re-hashed only when its stat (size,
mtime, ctime, inode) differs from the one recorded at publish time: any write
through the filesystem changes ctime, so this catches every rewrite at the cost
of a stat; silent media corruption needs ``always``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import LOAD_STATUSES, REPAIRABLE_STATUSES, VerifyStatus
from ..protocol.location import Location
from . import hostfacts, trace
from .blobfile import BlobHeaderError, blob_checksum, read_header
from .cachedir import CacheDir
from .devices import DeviceInfo, describe
from .encryption import NOT_SEALED, SEALED_OTHER_KEY, key_id, load_key, probe_blob
from .errors import OvcacheError, this_host
from .evidence import EvidenceReader, describe_orphan
from .filestat import model_file_stat, restat_after_link, stat_identity
from .fingerprint import Fingerprinter, StatCache
from .fsutil import regular_file_inside
from .loadcheck import LoadCheck, run_load_checks
from .manifest import Entry, Manifest, utcnow

OK = VerifyStatus.OK
PROBLEM_STATUSES = tuple(status for status in VerifyStatus if status != OK)
ORPHAN_REASON = "blob not recorded in the manifest (written by a server or another tool)"
DEFAULT_PROFILE = "openvino"


def profile_of(spec: dict[str, Any] | None) -> str:
    """The serving profile a spec follows (``openvino`` for specs from before profiles), to name it in a reason.

    :param spec: a manifest entry's recorded spec (``CacheSpec.to_json``); ``None`` or one without a
        ``profile`` means the default profile.
    """
    name = (spec or {}).get("profile")
    return name if isinstance(name, str) and name else DEFAULT_PROFILE


@dataclass
class VerifyResult:
    """One verify row: a managed entry's status and reason, or an orphan blob (the ``verify_entry`` shape)."""

    status: str
    reason: str
    model: str | None = None
    version: int | None = None
    device: str | None = None
    spec_id: str | None = None
    key: str | None = None
    blob: str | None = None
    size: int | None = None
    model_path: str | None = None
    spec: dict[str, Any] | None = None
    created: str | None = None
    verified: str | None = None
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    outputs_match: bool | None = None
    max_abs_diff: float | None = None
    # Would a warm-up fix it? Usually a matter of the status, but not for a blob another
    # process rewrote under another key: rebuilding it only makes the two fight over it.
    repairable: bool = False
    # Evidence from the server's side (see the module docstring): for an entry, whether its
    # blobs were read since publishing; for an orphan written after a warm-up, who wrote it.
    evidence: dict[str, Any] | None = None
    server_compiled: bool | None = None
    mtime: str | None = None
    runtime: str | None = None
    shadows: str | None = None
    hint: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the status is ``ok``."""
        return self.status == OK

    def to_json(self) -> dict[str, Any]:
        """The row as the ``verify_entry`` shape."""
        # A shallow copy (asdict deep-copies, which dominates at 10,000 entries); spec is the only nested value.
        data = dict(self.__dict__)
        if self.spec is not None:
            data["spec"] = dict(self.spec)
        if self.evidence is not None:
            data["evidence"] = dict(self.evidence)
        return data


class Verifier:
    """Checks managed entries (and finds orphan blobs) in one cache directory, cheapest check first.

    :param cache: the checked cache directory.
    :param checksum: ``changed`` re-hashes a blob only when its stat moved; ``always`` every time.
    :param load_check: also load each blob in a fresh process following its profile.
    :param infer_check: also compare cached outputs with a fresh compile (implies ``load_check``).
    :param check_devices: check that each entry's device is present and can cache.
    :param describe_device: how a device is described (a seam for tests; default :func:`.devices.describe`).
    """

    def __init__(
        self,
        cache: CacheDir,
        *,
        checksum: str = "changed",
        load_check: bool = False,
        infer_check: bool = False,
        check_devices: bool = True,
        describe_device: Callable[[str, Any, Location], DeviceInfo] | None = None,
    ) -> None:
        if checksum not in ("changed", "always"):
            raise ValueError("checksum must be 'changed' or 'always'")
        self.cache = cache
        self.checksum = checksum
        self.load_check = load_check or infer_check
        self.infer_check = infer_check
        self.check_devices = check_devices
        self._describe = describe_device or describe
        self._core: Any = None
        self._devices: dict[str, DeviceInfo | OvcacheError] = {}
        self._keys: dict[str, bytes | OvcacheError] = {}
        self._foreign_writes: set[str] = set()
        self._checked: dict[str, Entry] = {}
        self._host_isa: str | None = None
        self._isa_probed = False
        self.fingerprinter = Fingerprinter(StatCache.load(cache.stat_cache_path, mode=cache.policy.file_mode))

    @trace.traced("verify")
    def verify(
        self,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
        include_orphans: bool = True,
        manifest: Manifest | None = None,
        record: bool = True,
    ) -> list[VerifyResult]:
        """One result per selected entry, then the orphan blobs; verified times are recorded.

        :param model: only this model.
        :param version: only this version.
        :param device: only this device.
        :param include_orphans: also report blobs no entry accounts for.
        :param manifest: an already read manifest (default: read it now).
        :param record: stamp verified times and refreshed stats on the entries.
        """
        given = manifest is not None
        manifest = manifest or self.cache.read_manifest()
        entries = manifest.select(model, version, device)
        results: list[VerifyResult] = []
        refreshed: dict[str, list[int]] = {}
        for entry in entries:
            results.append(self._verify_entry(entry, refreshed))
        if self.load_check:
            self._load_checks(entries, results)
        with_orphans = include_orphans and model is None and version is None and device is None
        if with_orphans:
            results += self._orphans(manifest)
        if not given and any(not r.ok for r in results):
            results = self._recheck(manifest, results, refreshed, with_orphans)
        self._attach_evidence(results)
        self.fingerprinter.cache.save()
        if record:
            self._record(entries, results, refreshed)
        return results

    def _verify_entry(self, entry: Entry, refreshed: dict[str, list[int]]) -> VerifyResult:
        self._checked[entry.key] = entry
        res = self._row(entry)
        status, reason, new_stat = self._check(entry)
        res.status, res.reason = status, reason
        res.repairable = status in REPAIRABLE_STATUSES and entry.key not in self._foreign_writes
        if new_stat is not None:
            refreshed[entry.key] = new_stat
        return res

    def _orphans(self, manifest: Manifest) -> list[VerifyResult]:
        referenced = manifest.blob_names()
        entries = list(manifest.entries.values())
        found = []
        for name in self.cache.blob_names():
            if name in referenced:
                continue
            try:
                st = os.lstat(self.cache.root / name)
            except FileNotFoundError:
                continue  # removed since it was listed
            row = VerifyResult(VerifyStatus.ORPHAN, ORPHAN_REASON, blob=name, size=st.st_size)
            seen = describe_orphan(self.cache.root / name, entries, st)
            row.server_compiled, row.mtime, row.runtime = seen.server_compiled, seen.mtime, seen.runtime
            if seen.server_compiled:
                # Still an orphan (invalidate --orphans may remove it), but the one that says the warm-up missed.
                row.reason = f"server compiled something else: {seen.reason}"
                row.shadows, row.hint = seen.shadows, seen.hint
            found.append(row)
        return found

    def _attach_evidence(self, results: list[VerifyResult]) -> None:
        """Say, per entry, whether its blobs were read since publishing: one lstat per blob, after every read of ours."""
        reader = EvidenceReader(self.cache.root)
        for res in results:
            entry = self._checked.get(res.key) if res.key else None
            if entry is not None:
                res.evidence = reader.for_entry(entry).to_json()

    def _recheck(
        self, snapshot: Manifest, results: list[VerifyResult], refreshed: dict[str, list[int]], with_orphans: bool
    ) -> list[VerifyResult]:
        """Look again, under the manifest lock, at what looked wrong: was it a warm or invalidate running meanwhile?

        The checks run without the lock (a nightly verify must not stall a release),
        so a blob published or removed between reading the manifest and looking at
        the directory reads as ``missing``, ``corrupt`` or ``orphan`` though nothing
        is wrong. Writers publish and delete only under the manifest lock, so under
        it the directory and the manifest agree: an unchanged manifest means the
        findings stand; otherwise each problem is checked again against the
        manifest as it is now (an entry invalidated since is no longer reported, a
        blob recorded since is no longer an orphan). Load-check findings are kept.
        """
        if not self.cache.state.is_dir():
            return results  # nothing of ours ever wrote here
        with self.cache.manifest_lock():
            try:
                current = self.cache.load_manifest()
            except OvcacheError:
                return results
            if current.generation == snapshot.generation:
                return results
            out: list[VerifyResult] = []
            for res in results:
                if res.ok or res.status in LOAD_STATUSES:
                    out.append(res)
                elif res.key is not None:
                    entry = current.entries.get(res.key)
                    if entry is not None:
                        out.append(self._verify_entry(entry, refreshed))
                elif not with_orphans:
                    out.append(res)
            if with_orphans:
                out = [r for r in out if r.status != VerifyStatus.ORPHAN] + self._orphans(current)
        return out

    # -- per entry -------------------------------------------------------------------------
    @staticmethod
    def _row(entry: Entry) -> VerifyResult:
        return VerifyResult(
            OK,
            "",
            model=entry.model,
            version=entry.version,
            device=entry.device,
            spec_id=entry.spec_id,
            key=entry.key,
            blob=entry.blob,
            size=entry.size,
            model_path=entry.model_path,
            spec=entry.spec,
            created=entry.created,
            verified=entry.verified,
        )

    @trace.traced("verify.check")
    def _check(self, entry: Entry) -> tuple[str, str, list[int] | None]:
        """(status, reason, refreshed blob stat or None)."""
        where = Location(this_host(), entry.model, entry.version, entry.device)
        path = regular_file_inside(self.cache.root, entry.blob)
        if path is None:
            if os.path.lexists(self.cache.root / entry.blob):
                return VerifyStatus.CORRUPT, f"{entry.blob} is not a regular file", None
            return VerifyStatus.MISSING, f"blob {entry.blob} is not in the cache directory", None
        identity = stat_identity(path)
        new_stat = None
        if identity[0] != entry.size:
            foreign = self._foreign_key_write(entry, path, where)
            if foreign:
                self._foreign_writes.add(entry.key)
                return VerifyStatus.KEY_MISMATCH, foreign, None
            return (
                VerifyStatus.CORRUPT,
                f"blob is {identity[0]} bytes, {entry.size} were published (truncated or rewritten)",
                None,
            )
        try:
            if identity != entry.blob_stat or self.checksum == "always":
                if blob_checksum(path) != entry.checksum:
                    foreign = self._foreign_key_write(entry, path, where)
                    if foreign:
                        self._foreign_writes.add(entry.key)
                        return VerifyStatus.KEY_MISMATCH, foreign, None
                    return VerifyStatus.CORRUPT, "blob bytes differ from the published blob (checksum mismatch)", None
                new_stat = identity if identity != entry.blob_stat else None
            header = read_header(path)
        except PermissionError:
            return (
                VerifyStatus.UNREADABLE,
                f"uid {os.geteuid()} may not read {entry.blob}; run verify as the cache directory's owner",
                None,
            )
        except BlobHeaderError as exc:
            return VerifyStatus.CORRUPT, f"blob header unreadable: {exc}", None
        except OSError as exc:
            return VerifyStatus.CORRUPT, f"blob cannot be read: {exc.strerror}", None
        for record in entry.extra_blobs:
            problem = self._check_extra(entry, record)
            if problem is not None:
                return problem[0], problem[1], new_stat
        build = hostfacts.runtime_build(self.cache.host_facts_path)
        if header.runtime_version != build:
            return (
                VerifyStatus.RUNTIME_MISMATCH,
                f"written by OpenVINO {header.runtime_version}, this host runs {build}",
                new_stat,
            )
        if header.isa and entry.device.split(".")[0].upper() in ("CPU", "AUTO", "MULTI", "HETERO"):
            host_isa = self._isa()
            if host_isa and header.isa != host_isa:
                return VerifyStatus.ISA_MISMATCH, f"compiled for {header.isa!r}, this CPU runs {host_isa!r}", new_stat
        model_dir = entry.model_dir
        if not os.path.isdir(model_dir) or not os.path.isfile(entry.model_path):
            return VerifyStatus.MODEL_MISSING, f"model files at {entry.model_path} are gone", new_stat
        try:
            boundary = Path(entry.repository) if entry.repository else None
            fingerprint = self.fingerprinter.fingerprint(Path(model_dir), where, boundary)
        except OvcacheError as exc:
            return VerifyStatus.MODEL_MISSING, exc.message, new_stat
        if fingerprint.digest != entry.fingerprint:
            return (
                VerifyStatus.STALE_MODEL,
                "model files changed since the blob was built; the server would serve the old model",
                new_stat,
            )
        if entry.model_file_stat != model_file_stat(entry.spec.get("compile_mode", "path"), Path(entry.model_path)):
            return (
                VerifyStatus.STALE_MODEL,
                "model file has a new timestamp (same bytes); OpenVINO will reject the blob and recompile in the server",
                new_stat,
            )
        key_file = entry.spec.get("encryption_key_file")
        if key_file or entry.key_id:
            key = self._key(key_file, where)
            if isinstance(key, OvcacheError):
                return VerifyStatus.KEY_UNAVAILABLE, key.message, new_stat
            if key_id(key) != entry.key_id:
                return (
                    VerifyStatus.KEY_MISMATCH,
                    "the encryption key changed since the blob was written (rotated?); a server with the new key would recompile and rewrite it",
                    new_stat,
                )
        if self.check_devices:
            info = self._device(entry.device, where)
            if isinstance(info, OvcacheError):
                return VerifyStatus.DEVICE_MISSING, info.message, new_stat
            if not info.can_cache:
                return VerifyStatus.CANNOT_CACHE, f"device {entry.device} does not report EXPORT_IMPORT", new_stat
        return OK, "blob is intact and current", new_stat

    def _check_extra(self, entry: Entry, record: dict[str, Any]) -> tuple[str, str] | None:
        """One of the other blobs of an entry whose load wrote several: present and the bytes published."""
        name = record["blob"]
        of = f"(one of the entry's {len(entry.all_blobs)} blobs)"
        path = regular_file_inside(self.cache.root, name)
        if path is None:
            if os.path.lexists(self.cache.root / name):
                return VerifyStatus.CORRUPT, f"{name} {of} is not a regular file"
            return VerifyStatus.MISSING, f"blob {name} {of} is not in the cache directory"
        try:
            identity = stat_identity(path)
            if identity[0] != record["size"]:
                return VerifyStatus.CORRUPT, f"blob {name} {of} is {identity[0]} bytes, {record['size']} were published"
            if (identity != record["blob_stat"] or self.checksum == "always") and blob_checksum(path) != record["checksum"]:
                return VerifyStatus.CORRUPT, f"blob {name} {of}: bytes differ from the published blob (checksum mismatch)"
        except PermissionError:
            return VerifyStatus.UNREADABLE, f"uid {os.geteuid()} may not read {name}; run verify as the cache directory's owner"
        return None

    @trace.traced("verify.isa")
    def _isa(self) -> str | None:
        if not self._isa_probed:
            self._host_isa = hostfacts.host_isa(self.cache.host_facts_path if self.cache.state.is_dir() else None)
            self._isa_probed = True
        return self._host_isa

    @trace.traced("verify.device")
    def _device(self, device: str, where: Location) -> DeviceInfo | OvcacheError:
        if device not in self._devices:
            if self._core is None:
                import openvino as ov

                self._core = ov.Core()
            try:
                self._devices[device] = self._describe(device, self._core, where)
            except OvcacheError as exc:
                self._devices[device] = exc
        return self._devices[device]

    def _key(self, key_file: str | None, where: Location) -> bytes | OvcacheError:
        name = key_file or ""
        if name not in self._keys:
            if not key_file:
                from .errors import EncryptionError

                self._keys[name] = EncryptionError("blob was written encrypted but the spec names no key source", where)
            else:
                try:
                    self._keys[name] = load_key(key_file, where)
                except OvcacheError as exc:
                    self._keys[name] = exc
        return self._keys[name]

    def _foreign_key_write(self, entry: Entry, path: Path, where: Location) -> str | None:
        """Why a rewritten blob of an encrypted entry is another key's doing, or None if it is not."""
        if not entry.key_id:
            return None
        key = self._key(entry.spec.get("encryption_key_file"), where)
        if isinstance(key, OvcacheError) or key_id(key) != entry.key_id:
            return None
        try:
            sealed = probe_blob(path, key)
        except (OSError, ValueError):
            return None
        if sealed == SEALED_OTHER_KEY:
            return (
                "another process rewrote the blob under another encryption key (a server configured with another key?); "
                "rebuilding it would only make the two overwrite each other: give the server the agent's key, then warm with --force"
            )
        if sealed == NOT_SEALED:
            return (
                "another process rewrote the blob without encryption (a server without the key?); "
                "rebuilding it would only make the two overwrite each other: give the server the agent's key, then warm with --force"
            )
        return None

    def _load_checks(self, entries: list[Entry], results: list[VerifyResult]) -> None:
        by_key = {r.key: r for r in results}
        checks = [
            LoadCheck(
                e.key,
                e.model_path,
                e.spec,
                str(self.cache.root / e.blob),
                infer=self.infer_check,
                extra=[str(self.cache.root / name) for name in e.all_blobs[1:]],
            )
            for e in entries
            if by_key[e.key].status == OK
        ]
        if not checks:
            return
        with self.cache.staging() as scratch:
            outcomes = run_load_checks(checks, scratch)
        for key, outcome in outcomes.items():
            res = by_key[key]
            res.loaded_from_cache, res.load_ms = outcome.loaded_from_cache, outcome.load_ms
            res.outputs_match, res.max_abs_diff = outcome.outputs_match, outcome.max_abs_diff
            if outcome.key_rejected:
                res.status, res.reason = (
                    VerifyStatus.KEY_MISMATCH,
                    "OpenVINO found the blob but the agent's key does not decrypt it; a server with this key would recompile and rewrite it",
                )
                res.repairable = True
            elif outcome.error:
                res.status, res.reason = VerifyStatus.LOAD_FAILED, outcome.error
            elif not outcome.loaded_from_cache:
                res.status, res.reason = (
                    VerifyStatus.NOT_CACHED,
                    f"a compile following profile {profile_of(res.spec)} did not load this blob (LOADED_FROM_CACHE=False)",
                )
                res.repairable = True
            elif outcome.outputs_match is False:
                res.status, res.reason = (
                    VerifyStatus.OUTPUT_MISMATCH,
                    f"cached and fresh compiles give different outputs (max abs diff {outcome.max_abs_diff:g})",
                )
            else:
                # What this proves is the profile's call, not the server's: only the evidence speaks for the server.
                res.reason = f"a compile following profile {profile_of(res.spec)} loads from cache ({outcome.load_ms:.1f} ms)" + (
                    "; outputs match a fresh compile" if outcome.outputs_match else ""
                )

    @trace.traced("verify.record")
    def _record(self, entries: list[Entry], results: list[VerifyResult], refreshed: dict[str, list[int]]) -> None:
        """Stamp verified times (and refreshed stats) on entries that are still the ones we checked."""
        if not os.access(self.cache.root, os.W_OK) or not self.cache.state.is_dir():
            return
        good = {r.key: r for r in results if r.ok and r.key}
        if not good and not refreshed:
            return
        checked = {e.key: (e.blob, e.checksum) for e in entries}
        now = utcnow()
        with self.cache.update_manifest(repair=False) as manifest:
            for key, res in good.items():
                current = manifest.entries.get(key)
                if current is None or (current.blob, current.checksum) != checked[key]:
                    continue
                current.verified = now
                res.verified = now
                if res.load_ms is not None:
                    current.load_ms = res.load_ms
                if key in refreshed:
                    current.blob_stat = refreshed[key]
                if res.loaded_from_cache is not None:
                    # Load checks copy the blob now (its ctime stays); for a blob an older
                    # agent hard-linked, keep the record in step so the next quick check need not re-hash.
                    current.blob_stat = restat_after_link(self.cache.root / current.blob, current.blob_stat)


def summarize(results: list[VerifyResult]) -> dict[str, int]:
    """The result's ``summary``: how many rows have each status.

    :param results: verify results.
    """
    counts: dict[str, int] = {}
    for res in results:
        counts[res.status] = counts.get(res.status, 0) + 1
    return dict(sorted(counts.items()))
