"""The relayed blob store: sets move from the builder's store to an installer's over the hosts' own connections.

A fleet without a shared mount keeps a store directory on each host (the inventory's ``store``,
with ``store_relay = true``). After the builder of a class has put a release, the Airflow worker
copies that class's sets of the release from the builder's store into each installer's, reading
over the builder's connection and writing over the installer's (SFTP on the SSH sessions the hook
already opens; plain files for a local connection). The bytes pass through the worker in 1 MiB
pieces, never whole in memory. With a hub in object storage (inventory ``store_hub``), the builder's
task copies its sets up to the hub after its put, and each installer's task copies them down from
there (:class:`ObjectStorageFiles`): no two inference hosts need to reach each other, nor any of
them the hub.

What is copied is the directory store's own layout (:class:`~airflow_ovcache.core.blobstore.DirectoryStore`):
each ``sets/<model>/<version>/<spec id>/<class>.json`` ref of the release and the object it names.
Every file is written under a temp name in the destination store's ``tmp/`` and renamed into place,
the object before its ref, so an installer's store never names an object it does not hold. The relay
checks nothing itself: the installer's ``ovcache install`` re-hashes each object against its name
and refuses a torn or altered copy, exactly as for a shared store, so the relay cannot make an
install trust bytes it would not trust from a mount.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..core.policy import VersionPolicy

CHUNK = 1 << 20
_REF_LIMIT = 1 << 20


class RelayError(Exception):
    """A relay could not finish: the message names the stores and the file; nothing half-written stays named."""


class HostFiles(Protocol):
    """Files on one host, as the relay needs them (paths are the host's, absolute)."""

    def listdir(self, path: str) -> list[str]:
        """The names in a directory; an empty list when it does not exist.

        :param path: the directory.
        """
        ...

    def size(self, path: str) -> int | None:
        """A regular file's size, or None when there is none.

        :param path: the file.
        """
        ...

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory.

        :param path: the path.
        """
        ...

    def open_read(self, path: str) -> IO[bytes]:
        """A file opened for reading bytes.

        :param path: the file.
        """
        ...

    def open_write(self, path: str) -> IO[bytes]:
        """A new file opened for writing bytes (only the owner may read it, as the store's files).

        :param path: the file.
        """
        ...

    def makedirs(self, path: str) -> None:
        """Make a directory and its parents, if missing.

        :param path: the directory.
        """
        ...

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` to ``target``, replacing it (atomic on one filesystem).

        :param source: the temp file.
        :param target: its final name.
        """
        ...

    def remove(self, path: str) -> None:
        """Remove a file if it is there.

        :param path: the file.
        """
        ...


class LocalFiles:
    """The worker's own files: a host reached by a local connection."""

    def listdir(self, path: str) -> list[str]:
        """The names in ``path``, or none when it is missing.

        :param path: the directory.
        """
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def size(self, path: str) -> int | None:
        """``path``'s size when it is a regular file.

        :param path: the file.
        """
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory.

        :param path: the path.
        """
        return os.path.isdir(path)

    def open_read(self, path: str) -> IO[bytes]:
        """Open ``path`` for reading.

        :param path: the file.
        """
        return open(path, "rb")

    def open_write(self, path: str) -> IO[bytes]:
        """Create ``path`` (0600) for writing.

        :param path: the file.
        """
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")

    def makedirs(self, path: str) -> None:
        """``mkdir -p path``.

        :param path: the directory.
        """
        os.makedirs(path, exist_ok=True)

    def replace(self, source: str, target: str) -> None:
        """Rename over ``target``.

        :param source: the temp file.
        :param target: its final name.
        """
        os.replace(source, target)

    def remove(self, path: str) -> None:
        """Remove ``path`` if present.

        :param path: the file.
        """
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class SftpFiles:
    """A host's files over SFTP on an open SSH session (paramiko's ``SFTPClient``).

    :param sftp: the client, closed by :meth:`close`.
    """

    def __init__(self, sftp: Any) -> None:
        self.sftp = sftp

    def listdir(self, path: str) -> list[str]:
        """The names in ``path``, or none when it is missing.

        :param path: the directory.
        """
        try:
            return sorted(self.sftp.listdir(path))
        except OSError:
            return []

    def size(self, path: str) -> int | None:
        """``path``'s size when it is a regular file.

        :param path: the file.
        """
        try:
            info = self.sftp.stat(path)
        except OSError:
            return None
        return int(info.st_size) if info.st_mode is not None and stat.S_ISREG(info.st_mode) else None

    def open_read(self, path: str) -> IO[bytes]:
        """Open ``path`` for reading, with read-ahead.

        :param path: the file.
        """
        handle = self.sftp.open(path, "rb")
        handle.prefetch()
        return handle

    def open_write(self, path: str) -> IO[bytes]:
        """Create ``path`` for writing (0600), pipelined.

        :param path: the file.
        """
        handle = self.sftp.open(path, "wbx")
        handle.chmod(0o600)
        handle.set_pipelined(True)
        return handle

    def makedirs(self, path: str) -> None:
        """``mkdir -p path`` over SFTP.

        :param path: the directory.
        """
        missing = []
        current = path
        while current not in ("", "/") and not self.is_dir(current):
            missing.append(current)
            current = posixpath.dirname(current)
        for folder in reversed(missing):
            try:
                self.sftp.mkdir(folder, 0o700)
            except OSError:
                if not self.is_dir(folder):
                    raise

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory there.

        :param path: the path.
        """
        try:
            return stat.S_ISDIR(self.sftp.stat(path).st_mode or 0)
        except OSError:
            return False

    def replace(self, source: str, target: str) -> None:
        """``rename(2)`` over ``target`` (the posix-rename extension).

        :param source: the temp file.
        :param target: its final name.
        """
        self.sftp.posix_rename(source, target)

    def remove(self, path: str) -> None:
        """Remove ``path`` if present.

        :param path: the file.
        """
        try:
            self.sftp.remove(path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Close the SFTP channel (the SSH session stays the hook's)."""
        self.sftp.close()


class ObjectStorageFiles:
    """A store kept in object storage, through Airflow's ``ObjectStoragePath`` (``s3://``, ``gs://``, ``file://``...).

    One more backend of the relay: a class's builder can relay its sets of a release into a store
    here (a hub that no inference host mounts), and each installer's task relays them from here into
    its own store, where ``ovcache install`` checks every object against its name as always. The
    layout is the directory store's, under ``root``. Paths are URLs under ``root``
    (``s3://bucket/ovcache/sets/...``).

    Object storage has no directories and no atomic rename: :meth:`makedirs` does nothing there
    (fsspec's ``mkdir`` would create a missing *bucket*, so a mistyped hub would quietly become a
    new bucket), the root is present when its bucket is (a prefix exists only once an object is
    written under it), and :meth:`replace` is the filesystem's move (a copy, then a delete of the
    temp object), whose destination appears whole or not at all, which is what the relay's "object
    before ref, temp name then final name" order needs. Tested on ``file://`` and on an S3 API
    server stand-in (moto's) through Airflow's Amazon provider; no real object store is reachable here.

    :param root: the store's URL, e.g. ``s3://models-cache/ovcache``.
    :param conn_id: the Airflow connection ``ObjectStoragePath`` authenticates with (none for ``file://``).
    """

    def __init__(self, root: str, conn_id: str | None = None) -> None:
        self.root = root.rstrip("/")
        self.conn_id = conn_id

    def _path(self, path: str) -> Any:
        from airflow.sdk import ObjectStoragePath

        return ObjectStoragePath(path, conn_id=self.conn_id)

    def listdir(self, path: str) -> list[str]:
        """The names under ``path``, or none when nothing is there.

        :param path: the prefix.
        """
        try:
            return sorted(child.name for child in self._path(path).iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def size(self, path: str) -> int | None:
        """The object's size, or None when there is none.

        :param path: the object.
        """
        target = self._path(path)
        try:
            return int(target.stat().st_size) if target.is_file() else None
        except FileNotFoundError:
            return None

    def _local(self, target: Any) -> bool:
        """Whether ``target`` is on a filesystem with real directories (``file://``)."""
        protocol = target.fs.protocol
        return bool({"file", "local"} & set(protocol if isinstance(protocol, (tuple, list)) else (protocol,)))

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a prefix with objects under it; the store's root is when its bucket exists.

        :param path: the prefix.
        """
        target = self._path(path)
        if path.rstrip("/") != self.root or self._local(target):
            return bool(target.is_dir())
        return bool(self._path(f"{target.protocol}://{target.bucket}/").exists())

    def mtime(self, path: str) -> float | None:
        """When the object was written (seconds since the epoch), or None when there is none.

        :param path: the object.
        """
        try:
            return float(self._path(path).stat().st_mtime)
        except FileNotFoundError:
            return None

    def missing_store(self, path: str) -> str:
        """What to say when the store's root is missing (see :meth:`is_dir`).

        :param path: the store's root.
        """
        bucket = getattr(self._path(path), "bucket", "")
        where = f"bucket {bucket} does not exist" if bucket else "does not exist"
        return f"hub {path}: {where} (create it, or fix store_hub)"

    def open_read(self, path: str) -> IO[bytes]:
        """The object opened for reading.

        :param path: the object.
        """
        handle: IO[bytes] = self._path(path).open("rb")
        return handle

    def open_write(self, path: str) -> IO[bytes]:
        """A new object opened for writing (uploaded whole when closed, on object storage).

        :param path: the object.
        """
        handle: IO[bytes] = self._path(path).open("wb")
        return handle

    def makedirs(self, path: str) -> None:
        """Make the prefix where the filesystem has directories (``file://``); nothing on object storage.

        :param path: the prefix.
        """
        target = self._path(path)
        if self._local(target):
            target.mkdir(parents=True, exist_ok=True)

    def replace(self, source: str, target: str) -> None:
        """Move ``source`` over ``target`` (a rename on ``file://``; a copy and a delete on object storage).

        :param source: the temp object.
        :param target: its final name.
        """
        self._path(source).rename(self._path(target))

    def remove(self, path: str) -> None:
        """Remove the object if it is there.

        :param path: the object.
        """
        self._path(path).unlink(missing_ok=True)


@dataclass
class Relayed:
    """What a relay copied into an installer's store.

    :param sets: each ref copied, ``<model>/<version>/<spec id>/<class>``.
    :param objects: the objects copied (their names); those the destination already held are not.
    :param bytes_copied: the bytes that crossed the worker.
    """

    sets: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    bytes_copied: int = 0

    def to_json(self) -> dict[str, Any]:
        """As plain JSON, for XCom."""
        return {"sets": list(self.sets), "objects": list(self.objects), "bytes": self.bytes_copied}


def _copy(source: HostFiles, path: str, target: HostFiles, store: str, final: str) -> int:
    """Copy one file into ``store`` through its ``tmp/`` (made by the caller), then rename it to ``final``; the bytes copied."""
    target.makedirs(posixpath.dirname(final))
    temp = posixpath.join(store, "tmp", f".relay-{uuid.uuid4().hex}.part")
    copied = 0
    try:
        with source.open_read(path) as src, target.open_write(temp) as dst:
            while True:
                piece = src.read(CHUNK)
                if not piece:
                    break
                dst.write(piece)
                copied += len(piece)
        target.replace(temp, final)
    except BaseException:
        target.remove(temp)
        raise
    return copied


def relay_sets(
    source: HostFiles,
    source_store: str,
    target: HostFiles,
    target_store: str,
    model: str,
    version: int,
    class_keys: Iterable[str],
    into: Relayed | None = None,
) -> Relayed:
    """Copy every set of ``model`` ``version`` filed under ``class_keys`` from one host's store to another's.

    :param source: the builder's files.
    :param source_store: the builder's store directory.
    :param target: the installer's files.
    :param target_store: the installer's store directory; it must exist (a missing store is a
        missing mount or a typo, never made here).
    :param model: the model released.
    :param version: the version released.
    :param class_keys: the installer's class keys (one per device).
    :param into: what earlier calls copied, to add this call's to (a new record by default).
    :raises RelayError: a store is missing, or a file could not be read or written; what was renamed
        into place before is whole.
    """
    if not target.is_dir(target_store):
        raise RelayError(
            _missing(target, target_store, "blob store {} does not exist on the installing host (create it, or fix store)")
        )
    if not source.is_dir(source_store):
        raise RelayError(_missing(source, source_store, "blob store {} does not exist on the building host (fix its store)"))
    release = posixpath.join(source_store, "sets", model, str(version))
    done = into if into is not None else Relayed()
    try:
        target.makedirs(posixpath.join(target_store, "tmp"))
        for spec_id in source.listdir(release):
            for class_key in class_keys:
                ref_path = posixpath.join(release, spec_id, f"{class_key}.json")
                if source.size(ref_path) is None:
                    continue
                name = _ref_object(source, ref_path)
                if len(name) != 64:
                    raise RelayError(f"set ref {ref_path} in blob store {source_store} names no object")
                relative = posixpath.join("objects", name[:2], f"{name}.set")
                object_path = posixpath.join(source_store, relative)
                want = source.size(object_path)
                if want is None:
                    raise RelayError(f"blob store {source_store} names object {name} but does not hold it")
                final = posixpath.join(target_store, relative)
                if target.size(final) != want:
                    done.bytes_copied += _copy(source, object_path, target, target_store, final)
                    done.objects.append(name)
                done.bytes_copied += _copy(
                    source,
                    ref_path,
                    target,
                    target_store,
                    posixpath.join(target_store, "sets", model, str(version), spec_id, f"{class_key}.json"),
                )
                done.sets.append(f"{model}/{version}/{spec_id}/{class_key}")
    except (OSError, ValueError) as exc:
        raise RelayError(f"relaying {model} version {version} from {source_store} to {target_store}: {exc}") from exc
    return done


@dataclass
class Pruned:
    """What a prune removed from a hub.

    :param sets: each ref removed, ``<model>/<version>/<spec id>/<class>``.
    :param objects: the objects removed (no ref named them, and they were old enough).
    :param kept: the versions of the pruned model the class keeps there.
    """

    sets: list[str] = field(default_factory=list)
    objects: list[str] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """As plain JSON, for XCom."""
        return {"sets": list(self.sets), "objects": list(self.objects), "kept": list(self.kept)}


def prune_hub(
    hub: ObjectStorageFiles, model: str, class_keys: Iterable[str], keep: VersionPolicy, min_age: float | None = None
) -> Pruned:
    """Remove a class's sets of ``model`` that ``keep`` no longer serves from a hub, then objects no set names.

    The hub's retention, as ``ovcache store-prune`` is a directory store's: each class's builder
    prunes only the refs filed under its own class keys, with its own version policy, so classes
    with different policies sharing a hub never remove each other's versions. An object goes only
    when no ref of any model or class names it and it is older than ``min_age`` (a put in flight
    writes its object before its ref).

    :param hub: the hub.
    :param model: the model whose versions are pruned.
    :param class_keys: the class's keys (one per device).
    :param keep: the class's :class:`~airflow_ovcache.core.policy.VersionPolicy` (its hosts' ``retain``).
    :param min_age: seconds an unnamed object must be old before it is removed (the directory store's
        garbage-collection age by default).
    :raises OSError: the hub could not be listed, read or written; what was removed before is gone,
        what was kept stays.
    """
    from ..core.blobstore import GC_MIN_AGE

    min_age = GC_MIN_AGE if min_age is None else min_age
    keys = set(class_keys)
    refs = list(_refs(hub, posixpath.join(hub.root, "sets")))  # one walk: the class's refs, and what every ref names
    mine: dict[int, list[tuple[str, str]]] = {}
    for label, path in refs:
        each_model, version, _, class_key = label.split("/")
        if each_model == model and version.isdigit() and class_key in keys:
            mine.setdefault(int(version), []).append((label, path))
    done = Pruned(kept=list(keep.select(list(mine))))
    removed = set()
    for number, found in sorted(mine.items()):
        if number in done.kept:
            continue
        for label, path in found:
            hub.remove(path)
            removed.add(path)
            done.sets.append(label)
    named = {_ref_object(hub, path) for _, path in refs if path not in removed}
    now = time.time()
    objects_root = posixpath.join(hub.root, "objects")
    for prefix in hub.listdir(objects_root):
        for name in hub.listdir(posixpath.join(objects_root, prefix)):
            digest = name[: -len(".set")] if name.endswith(".set") else ""
            path = posixpath.join(objects_root, prefix, name)
            written = hub.mtime(path)
            if not digest or digest in named or written is None or now - written < min_age:
                continue
            hub.remove(path)
            done.objects.append(digest)
    return done


def _refs(files: HostFiles, sets_root: str) -> Iterator[tuple[str, str]]:
    """Every ref under a store's ``sets/``: ``(<model>/<version>/<spec id>/<class>, path)``."""
    for model in files.listdir(sets_root):
        for version in files.listdir(posixpath.join(sets_root, model)):
            for spec_id in files.listdir(posixpath.join(sets_root, model, version)):
                folder = posixpath.join(sets_root, model, version, spec_id)
                for name in files.listdir(folder):
                    if name.endswith(".json"):
                        yield f"{model}/{version}/{spec_id}/{name[: -len('.json')]}", posixpath.join(folder, name)


def _ref_object(files: HostFiles, path: str) -> str:
    """The object a set ref names (empty when it names none)."""
    with files.open_read(path) as handle:
        return str(json.loads(handle.read(_REF_LIMIT)).get("object", ""))


def _missing(files: HostFiles, store: str, otherwise: str) -> str:
    """Why a store's root is missing: in the words of its backend where it has its own (a hub's bucket)."""
    describe = getattr(files, "missing_store", None)
    return str(describe(store)) if describe is not None else otherwise.format(store)


def relay_release(
    installer: Any, relay_from: dict[str, Any], store: str, models: Iterable[str], versions: Iterable[int], log: Any
) -> dict[str, Any]:
    """Relay a release's sets into an installer's store, from its class's builder or from a hub; never raises.

    What the release task does before ``ovcache install`` on a host whose store is its own
    (inventory ``store_relay`` or ``store_hub``). A relay that fails is a warning naming the host and
    where the sets were to come from: the install then finds no set (or an older one) and compiles,
    which is what the host would do without a store.

    :param installer: the installing host's :class:`~.ovcache.OvcacheHook`.
    :param relay_from: the builder, ``{"conn_id", "host", "store", "class"}``, or a hub in object
        storage, ``{"hub", "conn_id", "class"}`` (the class's keys joined by ``+``; ``conn_id`` is the
        hub's Airflow connection, or None).
    :param store: the installer's store directory.
    :param models: the released models.
    :param versions: the released versions.
    :param log: where the outcome is logged (the task's logger).
    :return: ``{"from", "sets", "objects", "bytes", "problems"}``, for the task's XCom.
    """
    from .ovcache import OvcacheHook

    keys = [k for k in str(relay_from.get("class") or "").split("+") if k]
    hub = relay_from.get("hub")
    if hub:
        source, source_store, named = (
            lambda: ObjectStorageFiles(str(hub), conn_id=relay_from.get("conn_id") or None),
            str(hub),
            f"hub {hub}",
        )
    else:
        builder = OvcacheHook(str(relay_from["conn_id"]), host_name=str(relay_from.get("host") or "") or None)
        source, source_store, named = builder.files, str(relay_from["store"]), f"{relay_from.get('host')}'s store"
    return _relay_logged(
        source,
        source_store,
        installer.files,
        store,
        keys,
        models,
        versions,
        log,
        record={"from": str(hub) if hub else relay_from.get("host")},
        failure=f"host {installer.host}: relaying from {named} failed",
        then="the install compiles instead",
    )


def relay_to_hub(
    builder: Any, relay_to: dict[str, Any], store: str, models: Iterable[str], versions: Iterable[int], log: Any
) -> dict[str, Any]:
    """Copy what a class's builder put into its own store up to the class's hub; never raises.

    What the builder's release task does after its put, for hosts with the inventory's
    ``store_hub``. A copy that fails is a warning: the builder's cache is warm whatever happens
    here, and the class's installers find no set in the hub and compile for themselves.

    :param builder: the builder's :class:`~.ovcache.OvcacheHook`.
    :param relay_to: the hub, ``{"hub", "conn_id", "class"}`` (as for :func:`relay_release`), and
        ``retain``, the builder's version policy the hub is then pruned by (:func:`prune_hub`; empty:
        not pruned).
    :param store: the builder's store directory, where its put left the sets.
    :param models: the released models.
    :param versions: the released versions.
    :param log: where the outcome is logged (the task's logger).
    :return: ``{"to", "sets", "objects", "bytes", "problems"}``, and ``pruned`` when the copy
        succeeded (:class:`Pruned` with its ``problems``), for the task's XCom.
    """
    hub = str(relay_to["hub"])
    keys = [k for k in str(relay_to.get("class") or "").split("+") if k]
    models = list(models)
    done = _relay_logged(
        builder.files,
        store,
        lambda: ObjectStorageFiles(hub, conn_id=relay_to.get("conn_id") or None),
        hub,
        keys,
        models,
        versions,
        log,
        record={"to": hub},
        failure=f"host {builder.host}: relaying its sets up to hub {hub} failed",
        then="the other hosts of its class compile for themselves; this host's cache is warm",
    )
    if not done["problems"]:
        done["pruned"] = _prune_logged(builder.host, hub, relay_to, keys, models, log)
    return done


def _prune_logged(host: str, hub: str, relay_to: dict[str, Any], keys: list[str], models: list[str], log: Any) -> dict[str, Any]:
    """Prune the class's sets of each released model from the hub by the builder's ``retain``; never raises."""
    from ..core.errors import UsageError
    from ..core.policy import VersionPolicy

    retain = str(relay_to.get("retain") or "")
    if not retain:
        log.info("hub %s not pruned: host %s keeps what its server's config serves (no retain)", hub, host)
        return {**Pruned().to_json(), "problems": []}
    files = ObjectStorageFiles(hub, conn_id=relay_to.get("conn_id") or None)
    done = Pruned()
    try:
        keep = VersionPolicy.parse(retain)
        for model in models:
            found = prune_hub(files, model, keys, keep)
            done.sets += found.sets
            done.objects += found.objects
            done.kept += found.kept
    except (OSError, ValueError, UsageError) as exc:
        line = f"host {host}: pruning hub {hub} by retain {retain} failed: {exc} (the release's sets are in place)"
        log.warning("%s", line)
        return {**done.to_json(), "problems": [line]}
    log.info(
        "pruned hub %s by retain %s: %d set(s), %d object(s) removed; versions kept: %s",
        hub,
        retain,
        len(done.sets),
        len(done.objects),
        ", ".join(map(str, sorted(set(done.kept)))) or "none",
    )
    return {**done.to_json(), "problems": []}


def _relay_logged(
    source: Any,
    source_store: str,
    target: Any,
    target_store: str,
    keys: list[str],
    models: Iterable[str],
    versions: Iterable[int],
    log: Any,
    record: dict[str, Any],
    failure: str,
    then: str,
) -> dict[str, Any]:
    """Open both sides (``source`` and ``target`` make their :class:`HostFiles`), relay every release, log it.

    Any failure becomes one warning line, ``<failure>: <why> (<then>)``, and the XCom's ``problems``;
    what was renamed into place before it is whole and stays.
    """
    from .errors import OvcacheHookError

    done = Relayed()
    opened: list[Any] = []
    try:
        reader = source()
        opened.append(reader)
        writer = target()
        opened.append(writer)
        for model in models:
            for version in versions:
                relay_sets(reader, source_store, writer, target_store, model, int(version), keys, into=done)
    except Exception as exc:  # noqa: BLE001 - a relay that fails (SFTP refused, a lost session...) must not fail the release
        known = isinstance(exc, (RelayError, OvcacheHookError, OSError))
        hint = _hint(exc, known, source_store, target_store)
        if not known:
            exc = RelayError(f"{type(exc).__name__}: {exc}")
        line = f"{failure}: {exc} ({f'{hint}; ' if hint else ''}{then})"
        log.warning("%s", line)
        return {**record, **done.to_json(), "problems": [line]}
    finally:
        for files in opened:
            getattr(files, "close", lambda: None)()
    log.info(
        "relayed %d set(s), %d object(s), %d bytes from %s into %s",
        len(done.sets),
        len(done.objects),
        done.bytes_copied,
        source_store,
        target_store,
    )
    return {**record, **done.to_json(), "problems": []}


def _hint(exc: Exception, known: bool, *stores: str) -> str:
    """What to check when a relay fails, where the error itself does not say; empty when it does.

    :param exc: what the relay raised.
    :param known: it is the relay's, the connection's or the filesystem's own error, which names its cause.
    :param stores: the two stores (a hub's is a URL).
    """
    if not any("://" in s for s in stores):
        return "" if known else "is SFTP enabled on both hosts' sshd?"
    text = str(exc)
    if isinstance(exc, ImportError) or "Unsupported filesystem" in text or "No filesystem registered" in text:
        return (
            "no filesystem for this scheme is installed where the task runs: install it there"
            " (apache-airflow-providers-amazon and s3fs, for s3://) or fix store_hub"
        )
    return "" if known else "check the inventory's store_hub and store_hub_conn_id"
