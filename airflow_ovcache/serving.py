"""Integrity on the serving side: load a cached blob only if it is the one the manifest vouches for.

A cache blob is compiled code that OpenVINO imports without checking where it
came from. A serving application that calls this instead of
``core.compile_model`` gets the warm-up's blob or nothing::

    import openvino as ov
    from airflow_ovcache.serving import compile_model_checked

    core = ov.Core()
    compiled = compile_model_checked(
        core, "/models/resnet50/3/model.xml", "CPU",
        {"CACHE_DIR": "/var/cache/ov", "PERFORMANCE_HINT": "LATENCY"},
        fallback="fresh",
    )

Before OpenVINO sees the blob, the helper finds the manifest entry for this
exact call (model path, device, properties, by-path or by-model, cache mode,
key id) and checks, cheapest first: the cache directory is not writable by
others; the runtime build and CPU are the ones the blob was built with; the
model file's size and mtime are those OpenVINO's own check will see; the model
version's content fingerprint is unchanged (a same-size ``model.bin`` swap
included); and the blob's full BLAKE3 checksum matches the manifest.

**What OpenVINO loads is what was checked.** The blob is copied into a private
folder of the serving process (mode 0700) and hashed there; OpenVINO is then
pointed at that folder. Blob names do not depend on the cache folder, so it finds
the copy; nobody else can change the copy between the check and the load; and
if OpenVINO misses anyway, it writes its new blob into the private folder, never
over the shared one (OpenVINO rewrites blobs in place, without a temp file). The
shared cache directory is only ever read. ``isolation="link"`` hard-links
instead of copying (no copy of a large blob, but the scratch folder must be on
the cache's filesystem and the link only protects against whoever can write the
*directory*, not against the blob's owner).

A blob that fails a check is refused with :class:`IntegrityError` naming the
model, version, device and host; with ``fallback="fresh"`` the model is compiled
without any cache instead (slower, never trusting or touching the blob).

Only ``openvino``, ``numpy``, ``blake3`` (and ``cryptography`` for encrypted
caches) are imported; not Airflow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.blobfile import BlobHeaderError, is_blob_name, parse_header
from .core.encryption import CacheCipher, key_id, load_key, parse_key
from .core.errors import IntegrityError, ManifestCorrupt, OvcacheError, UsageError, Where, this_host
from .core.manifest import Entry, Manifest
from .core.permissions import AccessPolicy, enforce, inspect_tree
from .core.spec import RESERVED_PROPERTIES, CacheSpec

log = logging.getLogger(__name__)

FALLBACKS = ("raise", "fresh")
ISOLATIONS = ("copy", "link")
_CHUNK = 8 << 20


@dataclass
class ServingLoad:
    """What :func:`load_checked` did, for a caller that wants more than the compiled model."""

    compiled: Any
    loaded_from_cache: bool
    model: str | None
    version: int | None
    device: str
    blob: str | None = None
    entry_key: str | None = None
    # Set when the cache was not used: the check that failed (IntegrityError.reason) and why.
    fallback_reason: str | None = None
    fallback_detail: str | None = None
    check_ms: float = 0.0
    compile_ms: float = 0.0
    warnings: list[str] = field(default_factory=list)


def compile_model_checked(
    core: Any,
    model_path: str | os.PathLike[str],
    device: str = "CPU",
    config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Any:
    """``core.compile_model(model_path, device, config)``, but only from a blob the manifest vouches for.

    Same arguments as ``compile_model`` (``CACHE_DIR`` may be in ``config`` or
    given as ``cache_dir=``), plus the keyword arguments of :func:`load_checked`.
    Returns the ``CompiledModel``.
    """
    return load_checked(core, model_path, device, config, **kwargs).compiled


def load_checked(
    core: Any,
    model_path: str | os.PathLike[str],
    device: str = "CPU",
    config: dict[str, Any] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    compile_mode: str = "path",
    cache_mode: str | None = None,
    encryption_key: bytes | str | None = None,
    encryption_key_file: str | os.PathLike[str] | None = None,
    fallback: str = "raise",
    isolation: str = "copy",
    scratch_dir: str | os.PathLike[str] | None = None,
    trusted_owners: set[int] | None = None,
    unsafe_cache_dir: str = "refuse",
) -> ServingLoad:
    """Check the cached blob for this compile call, then compile from a private copy of it.

    :param core: an ``openvino.Core``.
    :param model_path: the model file, exactly as the warm-up was given it (made
        absolute, not resolved: by-path blob names hash the path string).
    :param device: the device, as in ``compile_model``.
    :param config: compile properties, as in ``compile_model``; ``CACHE_DIR`` and
        ``CACHE_MODE`` may be here. Pass the key as ``encryption_key`` or
        ``encryption_key_file``, not as ``CACHE_ENCRYPTION_CALLBACKS``.
    :param cache_dir: the shared cache directory, if not in ``config``.
    :param compile_mode: ``path`` (``compile_model(path)``) or ``model``
        (``compile_model(core.read_model(path))``), as the warm-up's spec says.
    :param cache_mode: ``OPTIMIZE_SPEED`` (default) or ``OPTIMIZE_SIZE``.
    :param encryption_key: the cache key (32 bytes or 64 hex characters).
    :param encryption_key_file: or a key file (0600/0640), as the agent reads it.
    :param fallback: ``raise`` (default) refuses with :class:`IntegrityError`;
        ``fresh`` compiles without any cache instead and says why in the result.
    :param isolation: ``copy`` (default) or ``link``, see the module docs.
    :param scratch_dir: where the private folder is made (default: the temp dir;
        for ``link``, a folder of this user's on the cache filesystem).
    :param trusted_owners: uids allowed to own the cache directory, manifest and
        blob besides this user and root (e.g. the agent's user); others are refused.
    :param unsafe_cache_dir: ``refuse`` (default), ``strict`` or ``warn``, as for the agent.
    """
    if fallback not in FALLBACKS:
        raise UsageError(f"fallback must be one of {', '.join(FALLBACKS)}, not {fallback!r}")
    if isolation not in ISOLATIONS:
        raise UsageError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {isolation!r}")
    started = time.perf_counter()
    path = Path(os.path.abspath(os.fspath(model_path)))
    properties = dict(config or {})
    cache_root = cache_dir if cache_dir is not None else properties.get("CACHE_DIR")
    if not cache_root:
        raise UsageError("no cache directory: pass cache_dir= or CACHE_DIR in config")
    if "CACHE_ENCRYPTION_CALLBACKS" in properties:
        raise UsageError("pass the cache key as encryption_key= or encryption_key_file=, not as CACHE_ENCRYPTION_CALLBACKS")
    mode = str(cache_mode or properties.get("CACHE_MODE") or "OPTIMIZE_SPEED").upper()
    for reserved in RESERVED_PROPERTIES:
        properties.pop(reserved, None)
    key = _key(encryption_key, encryption_key_file)
    spec = CacheSpec.make(
        device=device,
        properties={k: _plain(v) for k, v in properties.items()},
        compile_mode=compile_mode,
        cache_mode=mode,
    )
    model, version = _coordinates(path)
    where = Where(this_host(), model, version, device)
    result = ServingLoad(None, False, model, version, device)
    try:
        with _private_folder(scratch_dir) as private:
            entry = _check(
                Path(os.path.abspath(os.fspath(cache_root))),
                path,
                spec,
                key,
                where,
                private,
                isolation,
                trusted_owners,
                unsafe_cache_dir,
                result,
            )
            result.blob, result.entry_key = entry.blob, entry.key
            result.check_ms = round((time.perf_counter() - started) * 1000, 3)
            _compile_private(core, path, spec, key, private, where, result)
    except IntegrityError as exc:
        if fallback == "raise":
            raise
        result.fallback_reason, result.fallback_detail = exc.reason, exc.one_line()
        log.warning("not using the cache: %s; compiling without it", exc.one_line())
        if result.compiled is None:  # a check failed before OpenVINO ran: compile without any cache
            from .core.compiler import serving_compile

            t0 = time.perf_counter()
            result.compiled = serving_compile(core, path, spec, None, where).compiled
            result.compile_ms = round((time.perf_counter() - t0) * 1000, 3)
        result.loaded_from_cache = False
    return result


# -- the checks ----------------------------------------------------------------------------


def _check(
    root: Path,
    model_path: Path,
    spec: CacheSpec,
    key: bytes | None,
    where: Where,
    private: Path,
    isolation: str,
    trusted_owners: set[int] | None,
    unsafe: str,
    result: ServingLoad,
) -> Entry:
    import openvino

    from .core import hostfacts

    manifest_path = root / ".ovcache" / "manifest.json"
    trusted = None if trusted_owners is None else {os.geteuid(), 0, *trusted_owners}
    report = inspect_tree(root, trusted, manifest=manifest_path)
    policy = AccessPolicy(unsafe="strict" if trusted_owners is not None and unsafe == "refuse" else unsafe)
    try:
        result.warnings.extend(enforce(report, policy, root, where))
    except OvcacheError as exc:
        raise IntegrityError("unsafe-cache-dir", exc.message, where, exc.hint) from None
    for warning in result.warnings:
        log.warning("%s", warning)
    try:
        manifest = Manifest.load(manifest_path, where)
    except ManifestCorrupt as exc:
        raise IntegrityError("manifest", exc.message, where, exc.hint) from None
    except OSError as exc:
        raise IntegrityError("manifest", f"cannot read the manifest {manifest_path}: {exc.strerror}", where) from None
    entry = _entry(manifest, model_path, spec, key, where)
    where.version = entry.version if where.version is None else where.version
    build = openvino.get_version()
    if entry.runtime != build:
        raise IntegrityError(
            "runtime-mismatch", f"the blob was built by OpenVINO {entry.runtime}, this process runs {build}", where
        )
    if entry.device.split(".")[0].upper() in ("CPU", "AUTO", "MULTI", "HETERO") and entry.cpu != hostfacts.cpu_signature():
        raise IntegrityError("cpu-mismatch", "the blob was built on another CPU", where)
    _check_model(entry, model_path, root, where)
    _copy_and_hash(root, entry, private, isolation, trusted_owners, where)
    return entry


def _entry(manifest: Manifest, model_path: Path, spec: CacheSpec, key: bytes | None, where: Where) -> Entry:
    """The manifest entry this compile call would load; the newest if several record it."""
    wanted = {
        "properties": spec.property_dict,
        "compile_mode": spec.compile_mode,
        "cache_mode": spec.cache_mode,
    }
    kid = key_id(key) if key is not None else None
    candidates = [e for e in manifest.entries.values() if e.model_path == str(model_path) and e.device == spec.device]
    same_call = [
        e
        for e in candidates
        if {
            "properties": {str(k): str(v) for k, v in (e.spec.get("properties") or {}).items()},
            "compile_mode": e.spec.get("compile_mode", "path"),
            "cache_mode": e.spec.get("cache_mode", "OPTIMIZE_SPEED"),
        }
        == wanted
    ]
    matching = [e for e in same_call if e.key_id == kid]
    if matching:
        return max(matching, key=lambda e: (e.created, e.key))
    if same_call:
        other = max(same_call, key=lambda e: (e.created, e.key))
        if where.version is None:
            where.version = other.version
        if kid is None:
            raise IntegrityError("key-mismatch", f"blob {other.blob} is encrypted and no key was given", where)
        if other.key_id is None:
            raise IntegrityError("key-mismatch", f"blob {other.blob} is not encrypted but a key was given", where)
        raise IntegrityError(
            "key-mismatch",
            f"blob {other.blob} was written under key id {other.key_id}, this process holds key id {kid}",
            where,
            "give the serving application the key the warm-up uses (after a key rotation, warm again)",
        )
    if candidates:
        raise IntegrityError(
            "not-warmed",
            f"{model_path} is warmed on {spec.device}, but for another call ({candidates[0].spec}); this one asks for {spec.to_json()}",
            where,
            "make the warm-up's cache spec the serving call: same properties, compile mode and cache mode",
        )
    raise IntegrityError(
        "not-warmed", f"no warmed blob is recorded for {model_path} on {spec.device}", where, "warm this model version first"
    )


def _check_model(entry: Entry, model_path: Path, root: Path, where: Where) -> None:
    from .core.fingerprint import Fingerprinter, StatCache

    try:
        st = os.stat(model_path)
    except OSError as exc:
        raise IntegrityError("stale-model", f"model file {model_path} cannot be read: {exc.strerror}", where) from None
    if entry.model_file_stat is not None and [st.st_size, int(st.st_mtime)] != entry.model_file_stat:
        raise IntegrityError(
            "stale-model", "the model file's size or timestamp changed since the blob was built (OpenVINO would reject it)", where
        )
    # The agent's stat cache (readable with a serving group) spares re-reading unchanged weights.
    fingerprinter = Fingerprinter(StatCache.load(root / ".ovcache" / "fingerprints.json"))
    try:
        boundary = Path(entry.repository) if entry.repository else None
        digest = fingerprinter.fingerprint(Path(entry.model_dir), where, boundary).digest
    except OvcacheError as exc:
        raise IntegrityError("stale-model", exc.message, where) from None
    if digest != entry.fingerprint:
        raise IntegrityError(
            "stale-model", "the model files changed since the blob was built; it would serve the old model", where
        )


def _copy_and_hash(
    root: Path, entry: Entry, private: Path, isolation: str, trusted_owners: set[int] | None, where: Where
) -> None:
    """Put the blob into ``private`` and check the bytes there: what is checked is what OpenVINO loads."""
    import blake3

    if not is_blob_name(entry.blob):
        raise IntegrityError("manifest", f"the manifest names {entry.blob!r}, which is not a blob file name", where)
    source = root / entry.blob
    target = private / entry.blob
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise IntegrityError("missing", f"blob {entry.blob} is not in {root}", where) from None
    except OSError as exc:
        raise IntegrityError("unreadable", f"blob {entry.blob} cannot be opened: {exc.strerror}", where) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise IntegrityError("checksum", f"{entry.blob} is not a regular file", where)
        if st.st_mode & (stat.S_IWOTH | stat.S_IWGRP):
            raise IntegrityError(
                "unsafe-cache-dir", f"blob {entry.blob} is writable by others (mode {stat.S_IMODE(st.st_mode):04o})", where
            )
        if trusted_owners is not None and st.st_uid not in {os.geteuid(), 0, *trusted_owners}:
            raise IntegrityError("unsafe-cache-dir", f"blob {entry.blob} is owned by uid {st.st_uid}", where)
        if st.st_size != entry.size:
            raise IntegrityError("checksum", f"blob is {st.st_size} bytes, {entry.size} were published", where)
        linked = False
        if isolation == "link":
            try:
                os.link(f"/proc/self/fd/{fd}", target, follow_symlinks=True)
                linked = True
            except OSError:
                linked = False  # another filesystem, or not ours to link: copy instead
        if not linked:
            _copy(fd, target, st.st_size)
    finally:
        os.close(fd)
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if st.st_size:
        hasher.update_mmap(target)
    if "blake3:" + hasher.hexdigest() != entry.checksum:
        raise IntegrityError("checksum", f"blob {entry.blob} differs from the published blob (checksum mismatch)", where)
    try:
        with open(target, "rb") as handle:
            header = parse_header(handle.read(4096))
    except BlobHeaderError as exc:
        raise IntegrityError("checksum", f"blob header unreadable: {exc}", where) from None
    if header.runtime_version != entry.runtime:
        raise IntegrityError("runtime-mismatch", f"the blob header says OpenVINO {header.runtime_version}", where)


def _copy(fd: int, target: Path, size: int) -> None:
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        done = 0
        while done < size:
            try:
                sent = os.copy_file_range(fd, out, min(size - done, 1 << 30), done, done)
            except OSError:
                sent = 0
            if sent <= 0:
                break
            done += sent
        if done < size:  # copy_file_range is not available between these filesystems
            os.lseek(fd, done, os.SEEK_SET)
            os.lseek(out, done, os.SEEK_SET)
            while chunk := os.read(fd, _CHUNK):
                os.write(out, chunk)
    finally:
        os.close(out)


def _compile_private(
    core: Any, model_path: Path, spec: CacheSpec, key: bytes | None, private: Path, where: Where, result: ServingLoad
) -> None:
    from .core.compiler import serving_compile
    from .core.errors import openvino_message

    cipher = CacheCipher(key) if key is not None else None
    t0 = time.perf_counter()
    try:
        done = serving_compile(core, model_path, spec, private, where, cipher)
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError for everything
        raise IntegrityError("not-loaded", f"the compile from the checked blob failed: {openvino_message(exc)}", where) from None
    result.compile_ms = round((time.perf_counter() - t0) * 1000, 3)
    # The compile is done whatever it loaded: a fallback returns it instead of compiling twice.
    result.compiled = done.compiled
    if done.key_rejected:
        raise IntegrityError(
            "key-mismatch", f"the key does not decrypt blob {result.blob} (OpenVINO recompiled it in a private folder)", where
        )
    if not done.loaded_from_cache:
        raise IntegrityError(
            "not-loaded",
            f"OpenVINO did not load the checked blob {result.blob} (LOADED_FROM_CACHE=False); the compile call differs from the warm-up's",
            where,
            "make the warm-up's cache spec the serving call",
        )
    result.loaded_from_cache = True


# -- small helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _private_folder(scratch_dir: str | os.PathLike[str] | None) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="ovcache-serve-", dir=scratch_dir))
    try:
        yield folder
    finally:
        # OpenVINO may keep the blob memory-mapped; unlinking is fine on POSIX.
        shutil.rmtree(folder, ignore_errors=True)


def _key(key: bytes | str | None, key_file: str | os.PathLike[str] | None) -> bytes | None:
    if key is not None and key_file is not None:
        raise UsageError("give either encryption_key or encryption_key_file, not both")
    if key_file is not None:
        return load_key(os.fspath(key_file))
    if key is None:
        return None
    return parse_key(key.encode() if isinstance(key, str) else key, "encryption_key")


def _plain(value: Any) -> Any:
    """Property values as the agent records them: enums by name, the rest as given."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) and not isinstance(value, (str, bytes)) else value


def _coordinates(path: Path) -> tuple[str | None, int | None]:
    """Model name and version from ``<root>/<model>/<version>/<file>``, for error messages."""
    version_dir = path.parent
    if version_dir.name.isascii() and version_dir.name.isdigit():
        return version_dir.parent.name or None, int(version_dir.name)
    return version_dir.name or None, None
