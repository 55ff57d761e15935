"""Filesystem primitives that keep the cache directory whole.

Everything that appears under a final name in the cache directory gets there by
``rename`` from a file fully written and fsynced on the same filesystem, so a
reader (OpenVINO in a serving process) sees the old file or the new one, never a
torn one. Deletion refuses anything that is not a regular file directly inside
the directory it was given.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from ..protocol.location import Location
from . import trace
from .errors import CacheDirError, DiskFull


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable.

    :param directory: the folder whose entries changed.
    """
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@trace.traced("fsync_file")
def fsync_file(path: Path) -> None:
    """Flush a file another process wrote (OpenVINO's blob) to disk before it is renamed into place.

    :param path: the file.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, where: Location | None = None) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, rename, fsync the folder.

    Readers see the old content or the new, never a torn file; OS errors become :func:`os_error`'s.

    :param path: the final name.
    :param data: the whole new content.
    :param mode: the file's permission bits (the access policy's file mode for shared files).
    :param where: host/model/version/device for the error.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error(exc, f"cannot write {path}", where) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as exc:
            raise os_error(exc, f"cannot write {path}", where) from exc
        fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def os_error(exc: OSError, what: str, where: Location | None = None) -> CacheDirError | DiskFull:
    """Turn an OSError into the error a user can act on: disk full, permission denied, or the OS's reason.

    The error is returned, not raised, so the caller raises it ``from`` the original.

    :param exc: the OS error.
    :param what: what was being done, which starts the message ("cannot write /var/...").
    :param where: host/model/version/device for the message.
    """
    where = where or Location()
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{what}: no space left on the cache filesystem", where)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return CacheDirError(
            f"{what}: permission denied",
            where,
            hint="run the agent as the user that owns the cache directory, or fix its permissions",
        )
    return CacheDirError(f"{what}: {exc.strerror or exc}", where)


@trace.traced("regular_file_inside")
def regular_file_inside(directory: Path, name: str) -> Path | None:
    """``directory/name`` if it is a regular file directly inside ``directory`` (not a symlink), else None.

    ``name`` must be a bare file name; anything with a separator or ``..`` is refused
    outright so a manifest entry can never steer a deletion elsewhere.

    :param directory: the folder the file must be directly in.
    :param name: the file's bare name.
    """
    if not name or name != os.path.basename(name) or name in {".", ".."} or "\x00" in name:
        return None
    path = directory / name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    import stat

    if not stat.S_ISREG(st.st_mode):
        return None
    return path


def unlink_inside(directory: Path, name: str) -> int:
    """Remove a ``<hash>.blob`` regular file directly in ``directory``; returns bytes freed (0 if nothing removed).

    Whatever asks (a manifest entry, a plan, a journal), nothing but a blob is
    ever deleted: not the manifest, not a file a person put there.

    :param directory: the cache directory.
    :param name: the blob's bare file name.
    """
    from .blobfile import is_blob_name

    if not is_blob_name(name):
        return 0
    path = regular_file_inside(directory, name)
    if path is None:
        return 0
    size = os.lstat(path).st_size
    try:
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return size


def remove_tree_at(dir_fd: int, name: str) -> None:
    """Remove the folder ``name`` inside the folder open as ``dir_fd``, never following a link at any level.

    Every level is opened with ``O_NOFOLLOW`` relative to its parent's
    descriptor, so a folder replaced by a link while we work is not entered: the
    link itself is unlinked and what it points to is left alone. (What
    ``shutil.rmtree(dir_fd=...)`` does from Python 3.11; written out for 3.10.)

    :param dir_fd: a descriptor of the folder holding ``name``.
    :param name: the bare name of the folder (or file, or link) to remove.
    """
    import stat

    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        for child in os.listdir(fd):
            remove_tree_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def free_bytes(directory: Path) -> int:
    """Bytes an unprivileged process can still write on the filesystem holding ``directory``.

    :param directory: any folder on that filesystem (the cache directory).
    """
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


_DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGTERM, SIGINT and SIGHUP until the block is done (a dropped SSH session sends SIGHUP).

    For the few steps that change the cache directory together (journal the
    removals in the manifest, unlink, clear the journal): a signal that can be
    caught then ends the agent after them, not between them. SIGKILL cannot be
    held; the journal covers that case.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
