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

**What OpenVINO loads is what was checked.** By default (``isolation="memory"``,
CPU) the blob is read once into memory private to the serving process and that
memory is hashed; OpenVINO then imports those very bytes
(``core.import_model`` of the blob body, after the ``<compiled_blob .../>``
header that OpenVINO's cache manager strips itself), with the properties its
cache manager would pass. Nobody else can change private memory between the
check and the import; OpenVINO is never given a cache directory, so it writes
nothing, and the shared cache directory is only ever read. The CPU plugin copies
what it needs during the import (pinned by the tests), so the private bytes are
released right after it: a checked load holds no more memory than a plain one.

The read is an ordinary read, so it counts as the server's read in the blob's
access time (the agent's evidence that a server loaded it).

``isolation="copy"`` (used for devices other than CPU, where the import from
memory is not pinned) copies the blob into a private folder of the serving
process (mode 0700) and hashes it there; OpenVINO is then pointed at that folder.
Blob names do not depend on the cache folder, so it finds the copy; if it misses
anyway, it writes its new blob into the private folder, never over the shared
one (OpenVINO rewrites blobs in place, without a temp file).
``isolation="link"`` hard-links instead of copying (no copy of a large blob, but
the scratch folder must be on the cache's filesystem and the link only protects
against whoever can write the *directory*, not against the blob's owner).

A blob that fails a check is refused with :class:`IntegrityError` naming the
model, version, device and host; with ``fallback="fresh"`` the model is compiled
without any cache instead (slower, never trusting or touching the blob).

Only ``openvino``, ``numpy``, ``blake3`` (and ``cryptography`` for encrypted
caches) are imported; not Airflow. Importing this module is cheap (a server
pays it on every start): beyond a few standard-library modules, everything is
imported by the function that needs it.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mmap

    from .core.encryption import CacheCipher
    from .core.manifest import Entry, Manifest
    from .core.spec import CacheSpec
    from .protocol.location import Location

FALLBACKS = ("raise", "fresh")
ISOLATIONS = ("memory", "copy", "link")
# Devices whose plugin is known (and tested) to import the blob body from memory
# exactly as its cache manager does, and to keep no reference to those bytes.
_MEMORY_DEVICES = ("CPU",)
_CHUNK = 8 << 20
# From this size the blob is read by several threads (one per core, up to four).
_PARALLEL_READ_MIN = 16 << 20
# From this size blake3 hashes on several threads.
_THREADED_HASH_MIN = 4 << 20
_HEADER_LIMIT = 4096


@dataclass
class ServingLoad:
    """What :func:`load_checked` did, for a caller that wants more than the compiled model.

    ``loaded_from_cache`` is True only when the checked blob was loaded: imported
    from the verified bytes (``isolation="memory"``; ``import_model`` either
    deserializes the blob or raises, it never compiles) or found by OpenVINO's
    cache manager in the private folder (``copy``/``link``, where OpenVINO's own
    ``LOADED_FROM_CACHE`` says so). On the memory path the ``CompiledModel``'s
    own ``LOADED_FROM_CACHE`` property reads False, because OpenVINO only sets it
    for loads through its cache manager; trust this field instead.

    :ivar compiled: the ``CompiledModel``.
    :ivar loaded_from_cache: whether the checked blob was what got loaded.
    :ivar model: the model's name, from ``<root>/<model>/<version>/<file>`` (``None`` if the path says none).
    :ivar version: the model version, from the path or the manifest entry.
    :ivar device: the device compiled for.
    :ivar blob: the blob's file name in the cache directory, once its manifest entry is found.
    :ivar entry_key: the manifest entry's key.
    :ivar fallback_reason: when the cache was not used, the failed check (:attr:`IntegrityError.reason`).
    :ivar fallback_detail: when the cache was not used, the one-line message saying why.
    :ivar check_ms: milliseconds spent on the checks (the blob's read and hash included).
    :ivar compile_ms: milliseconds OpenVINO spent importing or compiling.
    :ivar isolation: how the checked blob reached OpenVINO: ``memory``, ``copy`` or ``link``.
    :ivar warnings: what the cache directory's permission check warned about (``unsafe_cache_dir="warn"``).
    """

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
    # How the checked blob reached OpenVINO: "memory", "copy" or "link".
    isolation: str | None = None
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
    Returns the ``CompiledModel``; use :func:`load_checked` to learn whether the cache was used.

    :param core: an ``openvino.Core``.
    :param model_path: the model file, exactly as the warm-up was given it.
    :param device: the device, as in ``compile_model``.
    :param config: compile properties, as in ``compile_model``; ``CACHE_DIR`` may be here.
    :param kwargs: the keyword-only arguments of :func:`load_checked` (``cache_dir``,
        ``fallback``, ``isolation``, ``encryption_key``...), documented there.
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
    isolation: str = "memory",
    scratch_dir: str | os.PathLike[str] | None = None,
    trusted_owners: set[int] | None = None,
    unsafe_cache_dir: str = "refuse",
) -> ServingLoad:
    """Check the cached blob for this compile call, then load exactly the bytes that were checked.

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
    :param isolation: ``memory`` (default; on devices other than CPU it means
        ``copy``), ``copy`` or ``link``, see the module docs.
    :param scratch_dir: where the private folder of ``copy``/``link`` is made
        (default: the temp dir; for ``link``, a folder of this user's on the cache filesystem).
    :param trusted_owners: uids allowed to own the cache directory, manifest and
        blob besides this user and root (e.g. the agent's user); others are refused.
    :param unsafe_cache_dir: ``refuse`` (default), ``strict`` or ``warn``, as for the agent.
    """
    from .core.errors import IntegrityError, UsageError
    from .core.spec import RESERVED_PROPERTIES, CacheSpec
    from .protocol.location import Location

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
    if isolation == "memory" and spec.device.split(".")[0].upper() not in _MEMORY_DEVICES:
        isolation = "copy"
    model, version = _coordinates(path)
    where = Location(_host(), model, version, device)
    result = ServingLoad(None, False, model, version, device, isolation=isolation)
    root = Path(os.path.abspath(os.fspath(cache_root)))
    try:
        entry = _check(root, path, spec, key, where, trusted_owners, unsafe_cache_dir, result)
        where = where.merged(Location(version=entry.version))
        result.blob, result.entry_key = entry.blob, entry.key
        if isolation == "memory":
            blob, body = _read_and_hash(root, entry, trusted_owners, where)
            result.check_ms = round((time.perf_counter() - started) * 1000, 3)
            _import_verified(core, path, spec, key, blob, body, where, result)
        else:
            with _private_folder(scratch_dir) as private:
                _copy_and_hash(root, entry, private, isolation, trusted_owners, where)
                result.check_ms = round((time.perf_counter() - started) * 1000, 3)
                _compile_private(core, path, spec, key, private, where, result)
    except IntegrityError as exc:
        if fallback == "raise":
            raise
        result.fallback_reason, result.fallback_detail = exc.reason, exc.one_line()
        _log().warning("not using the cache: %s; compiling without it", exc.one_line())
        if result.compiled is None:  # a check failed before OpenVINO ran: compile without any cache
            from .core.compiler import serving_compile

            t0 = time.perf_counter()
            result.compiled = serving_compile(core, path, spec, None, where.merged(exc.where)).compiled
            result.compile_ms = round((time.perf_counter() - t0) * 1000, 3)
        result.loaded_from_cache = False
    return result


# -- the checks ----------------------------------------------------------------------------


def _check(
    root: Path,
    model_path: Path,
    spec: CacheSpec,
    key: bytes | None,
    where: Location,
    trusted_owners: set[int] | None,
    unsafe: str,
    result: ServingLoad,
) -> Entry:
    """Everything but the blob's bytes: directory safety, the manifest entry, runtime, CPU, model files."""
    import openvino

    from .core import hostfacts
    from .core.errors import IntegrityError, ManifestCorrupt, OvcacheError
    from .core.manifest import Manifest
    from .core.permissions import AccessPolicy, enforce, inspect_tree
    from .protocol.location import Location

    manifest_path = root / ".ovcache" / "manifest.json"
    trusted = None if trusted_owners is None else {os.geteuid(), 0, *trusted_owners}
    report = inspect_tree(root, trusted, manifest=manifest_path)
    policy = AccessPolicy(unsafe="strict" if trusted_owners is not None and unsafe == "refuse" else unsafe)
    try:
        result.warnings.extend(enforce(report, policy, root, where))
    except OvcacheError as exc:
        raise IntegrityError("unsafe-cache-dir", exc.message, where, exc.hint) from None
    for warning in result.warnings:
        _log().warning("%s", warning)
    try:
        manifest = Manifest.load(manifest_path, where)
    except ManifestCorrupt as exc:
        raise IntegrityError("manifest", exc.message, where, exc.hint) from None
    except OSError as exc:
        raise IntegrityError("manifest", f"cannot read the manifest {manifest_path}: {exc.strerror}", where) from None
    entry = _entry(manifest, model_path, spec, key, where)
    where = where.merged(Location(version=entry.version))
    build = openvino.get_version()
    if entry.runtime != build:
        raise IntegrityError(
            "runtime-mismatch", f"the blob was built by OpenVINO {entry.runtime}, this process runs {build}", where
        )
    if entry.device.split(".")[0].upper() in ("CPU", "AUTO", "MULTI", "HETERO") and entry.cpu != hostfacts.cpu_signature():
        raise IntegrityError("cpu-mismatch", "the blob was built on another CPU", where)
    _check_model(entry, model_path, root, where)
    return entry


def _entry(manifest: Manifest, model_path: Path, spec: CacheSpec, key: bytes | None, where: Location) -> Entry:
    """The manifest entry this compile call would load; the newest if several record it."""
    from .core.errors import IntegrityError
    from .protocol.location import Location

    wanted = {
        "properties": spec.property_dict,
        "compile_mode": spec.compile_mode,
        "cache_mode": spec.cache_mode,
    }
    kid = None
    if key is not None:
        from .core.encryption import key_id

        kid = key_id(key)
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
        where = where.merged(Location(version=other.version))
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


def _check_model(entry: Entry, model_path: Path, root: Path, where: Location) -> None:
    from .core.errors import IntegrityError, OvcacheError
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


def _open_blob(root: Path, entry: Entry, trusted_owners: set[int] | None, where: Location) -> tuple[int, os.stat_result]:
    """Open the entry's blob for reading and refuse what no check of its bytes could excuse."""
    from .core.blobfile import is_blob_name
    from .core.errors import IntegrityError

    if not is_blob_name(entry.blob):
        raise IntegrityError("manifest", f"the manifest names {entry.blob!r}, which is not a blob file name", where)
    try:
        # A plain read on purpose (no O_NOATIME): it is the server's read, and counts as one in the blob's atime.
        fd = os.open(root / entry.blob, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
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
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def _read_and_hash(root: Path, entry: Entry, trusted_owners: set[int] | None, where: Location) -> tuple[mmap.mmap, int]:
    """Read the blob once into private memory and hash that memory; returns it and where the body starts.

    Only these private bytes are checked and only they are handed to OpenVINO,
    so a change to the shared file after the read (even by its owner, who can
    write it in place) changes nothing that is loaded.
    """
    import mmap

    import blake3

    from .core.errors import IntegrityError

    fd, st = _open_blob(root, entry, trusted_owners, where)
    size = st.st_size
    try:
        if size == 0:
            raise IntegrityError("checksum", f"blob {entry.blob} is empty", where)
        # Anonymous and private: no file backs it, no other process maps it.
        memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if size >= 2 << 20 and hasattr(mmap, "MADV_HUGEPAGE"):
            memory.madvise(mmap.MADV_HUGEPAGE)  # far fewer page faults for a large blob
        # blake3's threads pay off only for a few MB and more; below, starting them costs more than they save.
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO if size >= _THREADED_HASH_MIN else 1)
        view = memoryview(memory)
        try:
            done = _read_parallel(fd, view) if size >= _PARALLEL_READ_MIN else _read_whole(fd, view)
            if done == size:
                hasher.update(view)
        finally:
            view.release()
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    if done != size:
        memory.close()
        raise IntegrityError("checksum", f"blob {entry.blob} shrank while it was read ({done} of {size} bytes)", where)
    if "blake3:" + hasher.hexdigest() != entry.checksum:
        memory.close()
        raise _checksum_mismatch(entry, where)
    try:
        body = _body_offset(memory[:_HEADER_LIMIT], entry, where)
    except BaseException:
        memory.close()
        raise
    return memory, body


def _read_whole(fd: int, view: memoryview) -> int:
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], done)
        if got <= 0:
            break
        done += got
    return done


def _read_parallel(fd: int, view: memoryview) -> int:
    """Read the file in as many slices as there are cores (up to four), each on its own thread.

    Most of a large read's time is the kernel faulting in and zeroing fresh
    private pages, which runs on as many cores as there are readers (``preadv``
    releases the GIL); measured on two cores, two readers took about two thirds
    of the time of one.
    """
    import threading

    size = len(view)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    readers = max(1, min(4, cores))
    step = (-(-size // readers) + 4095) // 4096 * 4096  # page-aligned slices
    got = [0] * readers
    short = [False] * readers
    failure: list[BaseException] = []

    def read_slice(index: int) -> None:
        start = index * step
        end = min(size, start + step)
        done = start
        try:
            while done < end:
                n = os.preadv(fd, [view[done:end]], done)
                if n <= 0:
                    break
                done += n
        except BaseException as exc:  # noqa: BLE001 - re-raised by the caller's thread
            failure.append(exc)
        got[index] = done - start
        short[index] = done < end

    threads = [threading.Thread(target=read_slice, args=(i,), name=f"ovcache-blob-reader-{i}") for i in range(1, readers)]
    for thread in threads:
        thread.start()
    read_slice(0)
    for thread in threads:
        thread.join()
    if failure:
        raise failure[0]
    # A short slice anywhere is a file that shrank while it was read: report fewer bytes than it has.
    return sum(got) if any(short) else size


def _body_offset(head: bytes, entry: Entry, where: Location) -> int:
    """Where the plugin's part of the blob starts: after the header line and the padding it announces.

    OpenVINO's cache manager reads the ``<compiled_blob .../>`` line, skips
    ``header_size_alignment`` padding, and gives the plugin the rest; the
    helper does the same, and checks the header's runtime as the manager would.
    """
    import re

    _check_header(head, entry, where)
    line_end = head.index(b"\n") + 1
    match = re.search(rb'header_size_alignment="([0-9]+)"', head[:line_end])
    alignment = int(match.group(1)) if match else 0
    return line_end + ((alignment - line_end % alignment) % alignment if alignment else 0)


def _check_header(head: bytes, entry: Entry, where: Location) -> None:
    """Refuse a blob whose header is unreadable or names another runtime than the manifest entry."""
    from .core.blobfile import BlobHeaderError, parse_header
    from .core.errors import IntegrityError

    try:
        header = parse_header(head)
    except BlobHeaderError as exc:
        raise IntegrityError("checksum", f"blob header unreadable: {exc}", where) from None
    if header.runtime_version != entry.runtime:
        raise IntegrityError("runtime-mismatch", f"the blob header says OpenVINO {header.runtime_version}", where)


def _checksum_mismatch(entry: Entry, where: Location) -> Exception:
    from .core.errors import IntegrityError

    return IntegrityError("checksum", f"blob {entry.blob} differs from the published blob (checksum mismatch)", where)


def import_config(spec: CacheSpec, model_path: Path, cipher: CacheCipher | None) -> dict[str, Any]:
    """The properties OpenVINO's cache manager hands the plugin when it imports this spec's blob.

    The compile properties as they are, no cache directory (so OpenVINO writes
    nothing), the key's callbacks for an encrypted blob, and for a weightless
    blob (``OPTIMIZE_SIZE``) the cache mode and the weights file it was built
    from, which the plugin reads the weights back from.

    :param spec: the cache spec of the entry being imported.
    :param model_path: the model file (its ``.bin`` is the weights file of a weightless blob).
    :param cipher: the cache key's cipher for an encrypted blob, else ``None``.
    """
    config: dict[str, Any] = dict(spec.property_dict)
    if spec.cache_mode != "OPTIMIZE_SPEED":
        config["CACHE_MODE"] = spec.cache_mode
        config["WEIGHTS_PATH"] = str(model_path.with_suffix(".bin"))
    if cipher is not None:
        config["CACHE_ENCRYPTION_CALLBACKS"] = cipher.callbacks()
    return config


def _import_verified(
    core: Any,
    model_path: Path,
    spec: CacheSpec,
    key: bytes | None,
    memory: mmap.mmap,
    body: int,
    where: Location,
    result: ServingLoad,
) -> None:
    """Hand OpenVINO the checked bytes themselves, then release them (the CPU plugin keeps its own copy)."""
    import numpy as np
    import openvino as ov

    from .core.errors import IntegrityError, openvino_message

    cipher = None
    if key is not None:
        from .core.encryption import CacheCipher

        cipher = CacheCipher(key)
    t0 = time.perf_counter()
    try:
        data = np.frombuffer(memory, dtype=np.uint8)[body:]
        tensor = ov.Tensor(data, shared_memory=True)
        try:
            result.compiled = core.import_model(tensor, spec.device, import_config(spec, model_path, cipher))
        finally:
            del tensor, data
    except Exception as exc:  # noqa: BLE001 - OpenVINO raises RuntimeError for everything
        if cipher is not None and cipher.decrypt_failures:
            raise IntegrityError("key-mismatch", f"the key does not decrypt blob {result.blob}", where) from None
        raise IntegrityError("not-loaded", f"OpenVINO did not import the checked blob: {openvino_message(exc)}", where) from None
    finally:
        try:
            memory.close()
        except BufferError:
            pass  # something still holds a view of it: the garbage collector frees it with that view
    result.compile_ms = round((time.perf_counter() - t0) * 1000, 3)
    result.loaded_from_cache = True


# -- the copy and link isolations ------------------------------------------------------------


def _copy_and_hash(
    root: Path, entry: Entry, private: Path, isolation: str, trusted_owners: set[int] | None, where: Location
) -> None:
    """Put the blob into ``private`` and check the bytes there: what is checked is what OpenVINO loads."""
    import blake3

    target = private / entry.blob
    fd, st = _open_blob(root, entry, trusted_owners, where)
    try:
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
        raise _checksum_mismatch(entry, where)
    with open(target, "rb") as handle:
        _check_header(handle.read(_HEADER_LIMIT), entry, where)


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
    core: Any, model_path: Path, spec: CacheSpec, key: bytes | None, private: Path, where: Location, result: ServingLoad
) -> None:
    from .core.compiler import serving_compile
    from .core.encryption import CacheCipher
    from .core.errors import IntegrityError, openvino_message

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


def __getattr__(name: str) -> Any:
    """``IntegrityError`` as an attribute of this module, imported only when asked for."""
    if name == "IntegrityError":
        from .core.errors import IntegrityError

        return IntegrityError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# -- small helpers ---------------------------------------------------------------------------


def _host() -> str:
    """The host name errors report, as ``core.errors.this_host()`` gives it, without importing ``socket``.

    On POSIX ``gethostname`` is the node name ``uname`` reports; a server pays every import.
    """
    return os.environ.get("OVCACHE_HOST") or os.uname().nodename


def _log() -> Any:
    import logging

    return logging.getLogger(__name__)


def _private_folder(scratch_dir: str | os.PathLike[str] | None) -> Any:
    import contextlib
    import shutil
    import tempfile

    @contextlib.contextmanager
    def folder() -> Any:
        made = Path(tempfile.mkdtemp(prefix="ovcache-serve-", dir=scratch_dir))
        try:
            yield made
        finally:
            # OpenVINO may keep the blob memory-mapped; unlinking is fine on POSIX.
            shutil.rmtree(made, ignore_errors=True)

    return folder()


def _key(key: bytes | str | None, key_file: str | os.PathLike[str] | None) -> bytes | None:
    if key is None and key_file is None:
        return None  # most servers: no need to import the encryption module at all
    from .core.encryption import load_key, parse_key
    from .core.errors import UsageError

    if key is None:
        return load_key(os.fspath(key_file)) if key_file is not None else None
    if key_file is not None:
        raise UsageError("give either encryption_key or encryption_key_file, not both")
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
