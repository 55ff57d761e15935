"""One OpenVINO cache directory and the agent's state folder inside it.

OpenVINO only ever looks at ``<hash>.blob`` files at the top of the directory, so
the agent keeps its own state beside them in ``.ovcache/``: the manifest, the
stat cache, host facts, lock files and private staging folders. Staging lives on
the same filesystem as the blobs so that publishing a blob is one ``rename``.

Locks are ``flock`` locks: the kernel drops them when their holder dies, even
by SIGKILL, so a killed warm-up never wedges the next one. (Plain ``fcntl``
rather than a locking library: this sits on the path of a no-op warm, where an
extra import costs more than the whole check.)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from .blobfile import is_blob_name
from .errors import CacheDirError, LockTimeout, ManifestCorrupt, Where
from .fsutil import os_error, signals_deferred
from .manifest import Manifest, utcnow
from .permissions import AccessPolicy, apply_dir_mode, enforce, inspect_tree, make_dir

log = logging.getLogger(__name__)

STATE_DIR = ".ovcache"
DEFAULT_LOCK_TIMEOUT = 1800.0  # a cold compile of a large model on a slow host can take many minutes


class CacheDir:
    def __init__(
        self,
        root: str | os.PathLike[str],
        where: Where | None = None,
        lock_timeout: float | None = None,
        policy: AccessPolicy | None = None,
    ):
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.where = where or Where()
        self.policy = policy if policy is not None else AccessPolicy.make()
        self.lock_timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self.warnings: list[str] = []
        self._read_cache: tuple[tuple[int, int, int, int], Manifest] | None = None

    # -- layout ------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        return self.root / STATE_DIR

    @property
    def manifest_path(self) -> Path:
        return self.state / "manifest.json"

    @property
    def stat_cache_path(self) -> Path:
        return self.state / "fingerprints.json"

    @property
    def host_facts_path(self) -> Path:
        return self.state / "host.json"

    @property
    def staging_root(self) -> Path:
        return self.state / "staging"

    def check(self, create: bool, writable: bool) -> CacheDir:
        """Make sure the directory is usable, and safe, before anything is compiled into it or read from it.

        A path that is a file, a directory we cannot write, or a missing one when
        we may not create it each fail here with one line naming the host. So does
        a directory other users could write (see :mod:`.permissions`): its blobs
        and manifest cannot be trusted, for reading any more than for writing.
        """
        if self.root.exists() and not self.root.is_dir():
            raise CacheDirError(
                f"cache path {self.root} is a file, not a directory",
                self.where,
                hint="point --cache-dir at a directory (OpenVINO's cache_dir)",
            )
        if not self.root.exists():
            if not create:
                raise CacheDirError(f"cache directory {self.root} does not exist", self.where, hint="warm a model into it first")
            try:
                self.root.parent.mkdir(parents=True, exist_ok=True)
                make_dir(self.root, self.policy)
            except OSError as exc:
                raise os_error(exc, f"cannot create cache directory {self.root}", self.where) from exc
        self.warnings.extend(enforce(inspect_tree(self.root, manifest=self.manifest_path), self.policy, self.root, self.where))
        if writable:
            if not os.access(self.root, os.W_OK | os.X_OK):
                raise CacheDirError(
                    f"cache directory {self.root} is not writable by uid {os.geteuid()}",
                    self.where,
                    hint="run the agent as the user that owns the cache directory, or fix its permissions",
                )
            try:
                if self.policy.gid is not None and os.stat(self.root).st_uid == os.geteuid():
                    apply_dir_mode(self.root, self.policy)
                if not make_dir(self.state, self.policy) and os.stat(self.state).st_uid == os.geteuid():
                    # Ours: bring a state folder made by an older agent (0755) in line with the policy.
                    apply_dir_mode(self.state, self.policy)
                self.staging_root.mkdir(mode=0o700, exist_ok=True)
                (self.state / "locks").mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, f"cannot create {self.state}", self.where) from exc
            # Leftovers of killed runs take disk space; clear them on every writing run.
            self.clean_stale_staging()
        return self

    # -- locks ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self, path: Path, what: str) -> Iterator[None]:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise os_error(exc, f"cannot take the {what} lock {path}", self.where) from exc
        try:
            deadline = time.monotonic() + self.lock_timeout
            pause = 0.005
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockTimeout(
                            f"timed out after {self.lock_timeout:g}s waiting for the {what} lock {path}", self.where
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.1)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def manifest_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held for every read-modify-write of the manifest and around publish and delete."""
        return self._lock(self.state / "manifest.lock", "manifest")

    def entry_lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Held for a whole warm of one entry, so N concurrent warm-ups compile it once."""
        import blake3

        name = blake3.blake3(key.encode()).hexdigest()[:24]
        return self._lock(self.state / "locks" / f"{name}.lock", f"entry {key}")

    # -- manifest ------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        """The current manifest, read without a lock, for reading only.

        It is only ever replaced by rename, so a file with the same inode, size and
        times is the same manifest: a warm of many entries parses it once, not once
        per entry. Callers must not change what they get; writers go through
        :meth:`update_manifest`, which re-reads under the lock unless the file is
        still this very one (then it takes this copy over, and later reads parse anew).
        """
        try:
            st = os.stat(self.manifest_path)
        except FileNotFoundError:
            return Manifest(self.manifest_path)
        except PermissionError:
            return self.load_manifest()  # raises the error that says what to do
        identity = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if self._read_cache is None or self._read_cache[0] != identity:
            self._read_cache = (identity, self.load_manifest())
        return self._read_cache[1]

    def _take_read_cache(self) -> Manifest | None:
        """Under the lock: the manifest parsed for reading, if the file is still that one, handed over once.

        A verify of thousands of entries would otherwise hold two parsed copies at
        its peak (the one it checked, and a fresh one to stamp), for nothing: the
        file has not changed since it was read. The copy is handed over and
        forgotten, so no later reader is given a manifest that a writer changes.
        """
        cached, self._read_cache = self._read_cache, None
        if cached is None:
            return None
        try:
            st = os.stat(self.manifest_path)
        except OSError:
            return None
        return cached[1] if cached[0] == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) else None

    def load_manifest(self) -> Manifest:
        """The manifest read afresh, saving with this directory's file mode; writers hold the lock."""
        try:
            manifest = Manifest.load(self.manifest_path, self.where)
        except PermissionError:
            raise CacheDirError(
                f"uid {os.geteuid()} may not read the manifest {self.manifest_path}",
                self.where,
                hint="run as the cache directory's owner, or as a member of its serving group (ovcache --group)",
            ) from None
        manifest.file_mode = self.policy.file_mode
        return manifest

    @contextlib.contextmanager
    def update_manifest(self, repair: bool = True, critical: bool = False) -> Iterator[Manifest]:
        """Lock, load, let the caller change it, save atomically.

        A corrupt manifest is set aside under a dated name (never deleted) and
        replaced by an empty one when ``repair`` is set; the blobs it described
        become unmanaged until the next warm re-records them. ``critical`` holds
        SIGTERM/SIGINT/SIGHUP from when the lock is taken until the manifest is
        saved, for a caller whose changes on disk must reach the manifest too.
        """
        with self.manifest_lock(), signals_deferred() if critical else contextlib.nullcontext():
            try:
                manifest = self._take_read_cache() or self.load_manifest()
            except ManifestCorrupt as exc:
                if not repair:
                    raise
                aside = self.set_aside_manifest()
                self.warnings.append(f"{exc.message}; set aside as {aside.name} and started a new one")
                log.warning("%s", self.warnings[-1])
                manifest = Manifest(self.manifest_path, file_mode=self.policy.file_mode)
            yield manifest
            manifest.save(self.where)

    def set_aside_manifest(self) -> Path:
        stamp = utcnow().replace(":", "").replace("+0000", "Z")
        aside = self.state / f"manifest.corrupt-{stamp}-{uuid.uuid4().hex[:6]}.json"
        os.replace(self.manifest_path, aside)
        return aside

    # -- blobs -----------------------------------------------------------------------------
    def blob_names(self) -> list[str]:
        """Regular ``<hash>.blob`` files at the top of the directory (symlinks are not blobs)."""
        names = []
        with os.scandir(self.root) as it:
            for entry in it:
                if is_blob_name(entry.name) and entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
        return sorted(names)

    # -- staging ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private, empty folder on the cache filesystem, removed afterwards.

        Its companion ``.lock`` is flock-ed for the folder's lifetime, so a later
        run can tell a dead owner's leftovers (lock free) from a live one's.
        """
        self.clean_stale_staging()
        ident = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        lock_path = self.staging_root / f"{ident}.lock"
        folder = self.staging_root / ident
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                folder.mkdir(mode=0o700)
            except OSError as exc:
                raise os_error(exc, f"cannot create staging folder in {self.staging_root}", self.where) from exc
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path)
            os.close(fd)

    def clean_stale_staging(self) -> int:
        """Remove staging folders whose owner is gone; returns how many."""
        removed = 0
        try:
            names = os.listdir(self.staging_root)
        except FileNotFoundError:
            return 0
        for name in names:
            if not name.endswith(".lock"):
                continue
            lock_path = self.staging_root / name
            try:
                fd = os.open(lock_path, os.O_RDWR)
            except OSError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its owner is alive
                shutil.rmtree(self.staging_root / name[: -len(".lock")], ignore_errors=True)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(lock_path)
                removed += 1
            finally:
                os.close(fd)
        return removed
