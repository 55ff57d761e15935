"""The blob store: immutable, content-addressed blob sets that hosts of one hardware class install.

One **set** is everything one published manifest entry holds (its blob and its extra blobs) plus the
metadata an installing host checks before it trusts the bytes: the set's key (model, version, spec id
with its profile, class key), the class parts, the spec, the model fingerprint, the model path and the
model file's ``[size, mtime]`` a by-path blob depends on, and the runtime. A set is stored as one
**object** named after the SHA-256 of its bytes; a small **ref** per key names the object.

The object's bytes are a pure function of the set (no time, no host name in them), so concurrent
publishers of one set write the same bytes under the same name, and whichever rename lands last
changes nothing. Every write goes to a temp name in the store's own ``tmp/`` (the same filesystem)
and is renamed into place: a reader sees a whole object or none. A reader re-hashes the object while
it copies the blobs out and refuses the set unless the digest is the object's name: a torn, truncated
or flipped object is never installed.

Backends implement :class:`BlobStore`; :class:`DirectoryStore` is a directory (on a builder, or a
shared mount). A store that moves bytes over SSH, or to object storage, is one more class with the
same four methods. Standard library only: the store is read on hosts that have nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from ..protocol.codes import ErrorCode
from ..protocol.location import Location
from .blobfile import is_blob_name
from .errors import OvcacheError
from .evidence import open_blob
from .manifest import utcnow
from .policy import VersionPolicy

MAGIC = b"OVCACHE-SET 1\n"
META_LIMIT = 1 << 20
CHUNK = 1 << 20
# An unreferenced object younger than this may be a put between its object and its ref: garbage
# collection leaves it.
GC_MIN_AGE = 3600.0
# Annotations inside the store classes, where ``list`` is the method's name.
Blobs = list[tuple[Path, str]]
Sets = list["StoredSet"]
Digests = list[str]
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


class StoreError(OvcacheError):
    """The store cannot be used (missing, unreadable, not writable): nothing was fetched or installed.

    :param store: the store's description (its path or URL), named in the message.
    :param problem: what is wrong with it.
    :param where: the coordinates known here.
    """

    def __init__(self, store: str, problem: str, where: Location | None = None) -> None:
        self.store = store
        super().__init__(
            f"blob store {store} is unreachable: {problem}",
            where or Location(),
            "mount the store or give --store the right path, then run again (the cache was not touched)",
            ErrorCode.STORE,
        )


class SetCorrupt(OvcacheError):
    """A stored object whose bytes are not the ones its name promises (torn, truncated, flipped).

    :param message: which object and what was found.
    :param where: the coordinates known here.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(message, where or Location(), "put the set again from a host that has it verified", ErrorCode.INTEGRITY)


@dataclass(frozen=True)
class SetKey:
    """What a set is filed under: one compile call's blobs for one hardware class.

    :param model: the model name.
    :param version: the version number.
    :param spec_id: the spec's id (it covers the device, properties and the serving profile).
    :param class_key: the hardware class of the device the blobs were compiled for.
    """

    model: str
    version: int
    spec_id: str
    class_key: str

    def parts(self) -> list[str]:
        """The key as path components, each refused unless it is a plain name (no ``/``, no ``..``)."""
        parts = [self.model, str(self.version), self.spec_id, self.class_key]
        for part in parts:
            if not _SAFE.match(part):
                raise ValueError(f"{part!r} is not a name a blob store files sets under")
        return parts

    def label(self) -> str:
        """``model@version spec_id class_key``, for messages."""
        return f"{self.model}@{self.version} spec {self.spec_id} class {self.class_key}"

    def to_json(self) -> dict[str, Any]:
        """The key's fields."""
        return {"model": self.model, "version": self.version, "spec_id": self.spec_id, "class_key": self.class_key}


@dataclass
class StoredSet:
    """A set as the store lists it: its key, the object that holds it, and the metadata inside.

    :param key: what it is filed under.
    :param digest: the object's SHA-256 (hex), which is also its name.
    :param size: the object's size in bytes.
    :param created: when its ref was written (ISO 8601, UTC).
    :param meta: the metadata the object carries (see :func:`.install.set_meta`).
    """

    key: SetKey
    digest: str
    size: int
    created: str
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The set as a result row."""
        return {**self.key.to_json(), "object": self.digest, "size": self.size, "created": self.created}


class BlobStore(Protocol):
    """What every backend offers: put, get, list, remove, by :class:`SetKey`.

    Implementations keep the two promises of this module: an object is written whole under the digest of
    its bytes, and :meth:`get` hands out blobs only after the digest matched.
    """

    description: str

    def put(self, key: SetKey, meta: dict[str, Any], blobs: Blobs) -> StoredSet:
        """Store ``blobs`` (the primary first) with ``meta`` under ``key``; the same set again changes nothing.

        :param key: what to file the set under.
        :param meta: the set's metadata; ``key`` and ``blobs`` (name, size, checksum) are filled in here.
        :param blobs: each blob file (read, not changed) with its checksum as the manifest records it, the primary first.
        """
        ...

    def get(self, key: SetKey, into: Path) -> StoredSet | None:
        """Copy the set's blobs into folder ``into``, checked; None if the store holds no set for ``key``.

        :param key: the set wanted.
        :param into: an empty folder (a cache's staging folder); on :class:`SetCorrupt` nothing is left in it.
        """
        ...

    def list(self, model: str | None = None) -> Sets:
        """Every set, or every set of one model, in key order.

        :param model: only this model's sets; None for all.
        """
        ...

    def remove(self, key: SetKey) -> bool:
        """Forget the set filed under ``key`` (its object goes at the next garbage collection); whether there was one.

        :param key: the set to remove.
        """
        ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_exact(source: BinaryIO, target: BinaryIO, size: int, digest: Any) -> int:
    """Copy ``size`` bytes, hashing them; returns how many there were (fewer on a truncated object)."""
    left = size
    while left:
        chunk = source.read(min(CHUNK, left))
        if not chunk:
            break
        digest.update(chunk)
        target.write(chunk)
        left -= len(chunk)
    return size - left


class DirectoryStore:
    """A blob store in a directory: ``objects/<2 hex>/<sha256>.set``, ``sets/<model>/<version>/<spec id>/<class>.json``.

    The directory must exist (a missing shared mount is an error, not a new empty store); the agent
    creates ``objects/``, ``sets/`` and ``tmp/`` in it on the first put.

    :param root: the store directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(root))
        self.description = str(self.root)

    # -- layout ----------------------------------------------------------------------------
    def _object_path(self, digest: str) -> Path:
        return self.root / "objects" / digest[:2] / f"{digest}.set"

    def _ref_path(self, key: SetKey) -> Path:
        model, version, spec_id, class_key = key.parts()
        return self.root / "sets" / model / version / spec_id / f"{class_key}.json"

    def check(self, writable: bool = False) -> DirectoryStore:
        """Raise :class:`StoreError` unless the store directory exists and can be read (and written).

        :param writable: also require write access (a put, a prune).
        """
        if not self.root.is_dir():
            raise StoreError(self.description, "no such directory" if not self.root.exists() else "not a directory")
        mode = os.R_OK | os.X_OK | (os.W_OK if writable else 0)
        if not os.access(self.root, mode):
            raise StoreError(self.description, "permission denied" + (" (it must be writable)" if writable else ""))
        try:
            os.listdir(self.root)
        except OSError as exc:
            raise StoreError(self.description, exc.strerror or str(exc)) from None
        return self

    @contextlib.contextmanager
    def _temp(self) -> Iterator[Path]:
        """A temp file name in ``tmp/``: on the store's filesystem, so the final rename is atomic."""
        tmp = self.root / "tmp"
        tmp.mkdir(exist_ok=True)
        path = tmp / f".{uuid.uuid4().hex}.part"
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _install(self, temp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        _fsync_dir(final.parent)

    # -- the protocol ----------------------------------------------------------------------
    def put(self, key: SetKey, meta: dict[str, Any], blobs: Blobs) -> StoredSet:
        """Write the object (temp name, fsync, rename), then its ref the same way.

        :param key: what to file the set under.
        :param meta: the set's metadata; ``key`` and ``blobs`` (name, size, checksum) are filled in here.
        :param blobs: each blob file with its manifest checksum, the primary first.
        """
        self.check(writable=True)
        records: list[dict[str, Any]] = [{"name": b.name, "size": b.stat().st_size, "checksum": c} for b, c in blobs]
        body = {**meta, "key": key.to_json(), "blobs": records}
        header = json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        if len(header) > META_LIMIT:
            raise ValueError("set metadata is too large")
        digest = hashlib.sha256()
        with self._temp() as temp:
            with open(temp, "wb") as out:
                for piece in (MAGIC, header):
                    digest.update(piece)
                    out.write(piece)
                for (blob, _), record in zip(blobs, records, strict=True):
                    # O_NOATIME: the agent's read must not look like a server's (the access time is evidence).
                    with os.fdopen(open_blob(blob), "rb") as source:
                        if _copy_exact(source, out, record["size"], digest) != record["size"]:
                            raise OSError(f"blob {blob} changed size while it was stored")
                out.flush()
                os.fsync(out.fileno())
            name = digest.hexdigest()
            size = temp.stat().st_size
            self._install(temp, self._object_path(name))
        stored = StoredSet(key, name, size, utcnow(), body)
        ref = {"format": 1, "object": name, "size": size, "created": stored.created, "key": key.to_json()}
        with self._temp() as temp:
            with open(temp, "w", encoding="utf-8") as out:
                json.dump(ref, out, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            self._install(temp, self._ref_path(key))
        return stored

    def _read_ref(self, path: Path) -> dict[str, Any] | None:
        try:
            with open(path, encoding="utf-8") as handle:
                ref = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SetCorrupt(f"set ref {path} in blob store {self.description} does not read: {exc}") from None
        if not isinstance(ref, dict) or not re.fullmatch(r"[0-9a-f]{64}", str(ref.get("object", ""))):
            raise SetCorrupt(f"set ref {path} in blob store {self.description} names no object")
        return ref

    def get(self, key: SetKey, into: Path) -> StoredSet | None:
        """Stream the object once: copy each blob into ``into`` while hashing it all, then compare the digest.

        :param key: the set wanted.
        :param into: an empty folder on the cache filesystem; left empty when the object is refused.
        """
        self.check()
        ref = self._read_ref(self._ref_path(key))
        if ref is None:
            return None
        name = ref["object"]
        path = self._object_path(name)
        written: list[Path] = []
        try:
            meta = self._extract(path, name, into, written)
        except BaseException:
            for blob in written:
                with contextlib.suppress(FileNotFoundError):
                    blob.unlink()
            raise
        if meta.get("key") != key.to_json():
            for blob in written:
                blob.unlink()
            raise SetCorrupt(f"object {name} in blob store {self.description} holds {meta.get('key')}, not {key.label()}")
        return StoredSet(key, name, path.stat().st_size, str(ref.get("created", "")), meta)

    def _extract(self, path: Path, name: str, into: Path, written: list[Path]) -> dict[str, Any]:
        refuse = f"object {name} of blob store {self.description}"
        digest = hashlib.sha256()
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise SetCorrupt(f"{refuse} is missing (its ref is there)") from None
        except OSError as exc:
            raise StoreError(self.description, f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as source:
            magic = source.read(len(MAGIC))
            header = source.readline(META_LIMIT)
            digest.update(magic)
            digest.update(header)
            try:
                if magic != MAGIC:
                    raise ValueError("it is not a blob set")
                meta = json.loads(header)
                records = meta["blobs"]
                names = [str(r["name"]) for r in records]
                sizes = [int(r["size"]) for r in records]
            except (ValueError, KeyError, TypeError) as exc:
                raise SetCorrupt(f"{refuse} is corrupt: its header does not read ({exc})") from None
            for blob_name, size in zip(names, sizes, strict=True):
                if not is_blob_name(blob_name):
                    raise SetCorrupt(f"{refuse} is corrupt: it names {blob_name!r}, not a <hash>.blob file")
                target = into / blob_name
                written.append(target)
                with open(target, "xb") as out:
                    copied = _copy_exact(source, out, size, digest)
                    out.flush()
                    os.fsync(out.fileno())
                if copied != size:
                    raise SetCorrupt(f"{refuse} is truncated: {blob_name} has {copied} of its {size} bytes")
            if source.read(1):
                raise SetCorrupt(f"{refuse} is corrupt: it has bytes after its last blob")
        if digest.hexdigest() != name:
            raise SetCorrupt(f"{refuse} failed its checksum (sha256 {digest.hexdigest()[:16]}...): torn or corrupt")
        return dict(meta)

    def list(self, model: str | None = None) -> Sets:
        """Every set whose ref reads, in key order (the object's own header is not read: that is :meth:`get`'s job).

        :param model: only this model's sets; None for all.
        """
        self.check()
        sets_root = self.root / "sets"
        found = []
        for ref_path in sorted(sets_root.glob("*/*/*/*.json")):
            parts = ref_path.relative_to(sets_root).parts
            if model is not None and parts[0] != model:
                continue
            try:
                key = SetKey(parts[0], int(parts[1]), parts[2], ref_path.stem)
                ref = self._read_ref(ref_path)
            except (ValueError, SetCorrupt):
                continue
            if ref is not None:
                found.append(StoredSet(key, ref["object"], int(ref.get("size", 0)), str(ref.get("created", "")), {}))
        return found

    def remove(self, key: SetKey) -> bool:
        """Unlink the set's ref; :meth:`collect_garbage` removes the object once no ref names it.

        :param key: the set to remove.
        """
        self.check(writable=True)
        try:
            self._ref_path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def collect_garbage(self, min_age: float = GC_MIN_AGE) -> Digests:
        """Remove objects no ref names and that are older than ``min_age`` seconds (a put in flight is younger).

        :param min_age: seconds an unreferenced object must be old before it is removed.
        :return: the digests removed.
        """
        self.check(writable=True)
        named = {s.digest for s in self.list()}
        now = time.time()
        removed = []
        for path in sorted((self.root / "objects").glob("*/*.set")):
            digest = path.stem
            try:
                if digest in named or now - path.stat().st_mtime < min_age:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(digest)
        return removed


def prune(store: BlobStore, keep: VersionPolicy, model: str | None = None, dry_run: bool = False) -> list[StoredSet]:
    """Remove the sets of versions the policy no longer serves, per model (the fleet's retention, in the store).

    :param store: the store to prune.
    :param keep: the version policy whose versions stay (``latest:2`` keeps each model's two newest stored versions).
    :param model: only this model; None for every model in the store.
    :param dry_run: only say what would be removed.
    :return: the sets removed (or that would be).
    """
    by_model: dict[str, list[StoredSet]] = {}
    for stored in store.list(model):
        by_model.setdefault(stored.key.model, []).append(stored)
    gone = []
    for sets in by_model.values():
        kept = set(keep.select([s.key.version for s in sets]))
        for stored in sets:
            if stored.key.version not in kept:
                if not dry_run:
                    store.remove(stored.key)
                gone.append(stored)
    if not dry_run and isinstance(store, DirectoryStore):
        store.collect_garbage()
    return gone


class UnreachableStore:
    """A store that could not be reached, standing in for it so that every item falls back to a local compile.

    ``ovcache install --compile-if-unreachable`` (what a release task asks for): each method raises
    the error the store's check raised, and :class:`~.install.Installer` in that mode turns it into
    the item's fallback instead of failing the command.

    :param error: the check's error (it names the store and what is wrong with it).
    """

    def __init__(self, error: StoreError) -> None:
        self.error = error
        self.description = error.store

    def put(self, key: SetKey, meta: dict[str, Any], blobs: Blobs) -> StoredSet:
        """Raise the store's error.

        :param key: unused.
        :param meta: unused.
        :param blobs: unused.
        """
        raise self.error

    def get(self, key: SetKey, into: Path) -> StoredSet | None:
        """Raise the store's error.

        :param key: unused.
        :param into: unused.
        """
        raise self.error

    def list(self, model: str | None = None) -> Sets:
        """Raise the store's error.

        :param model: unused.
        """
        raise self.error

    def remove(self, key: SetKey) -> bool:
        """Raise the store's error.

        :param key: unused.
        """
        raise self.error


def open_store(location: str) -> DirectoryStore:
    """The store a ``--store`` value names: a directory path (other backends will add their URL schemes here).

    :param location: the flag's value.
    """
    return DirectoryStore(location)
