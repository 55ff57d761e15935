"""One OpenVINO cache directory and the agent's state folder inside it.

OpenVINO only ever looks at ``<hash>.blob`` files at the top of the directory, so
the agent keeps its own state beside them in ``.ovcache/``: the manifest, the
stat cache, host facts, lock files and private staging folders. Staging lives on
the same filesystem as the blobs so that publishing a blob is one ``rename``.

Nothing under ``.ovcache/`` is ever followed through a symbolic link: before a
writing run creates, writes or deletes anything there, every path the agent
uses is checked with ``lstat`` to be a real folder or file owned by the agent's
user (or the cache directory's owner), and deletions go through file
descriptors opened with ``O_NOFOLLOW``, so a folder swapped for a link between
the check and the deletion is not followed either. A layout that fails the
check is refused with one line and nothing is deleted: with a cache owned by
another user and the agent run as root, that user could otherwise make root
delete any folder on the machine.

Locks are ``flock`` locks: the kernel drops them when their holder dies, even
by SIGKILL, so a killed warm-up never wedges the next one. The manifest lock is
taken on the ``.ovcache`` folder itself, which cannot be deleted from under its
holder the way a lock file can. (Plain ``fcntl``
rather than a locking library: this sits on the path of a no-op warm, where an
extra import costs more than the whole check.)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..protocol.location import Location
from . import trace
from .blobfile import is_blob_name
from .errors import CacheDirError, LockTimeout, ManifestCorrupt, UnsafeCacheDir
from .fsutil import os_error, remove_tree_at, signals_deferred
from .manifest import Manifest, utcnow
from .permissions import AccessPolicy, apply_dir_mode, enforce, inspect_tree, make_dir

log = logging.getLogger(__name__)

STATE_DIR = ".ovcache"
DEFAULT_LOCK_TIMEOUT = 1800.0  # a cold compile of a large model on a slow host can take many minutes
# Space kept aside on the cache filesystem so that invalidation can still write its
# journal (a new copy of the manifest) when the disk is full: twice the manifest, at least this.
RESERVE_MIN_BYTES = 1 << 20
_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CacheDir:
    """One OpenVINO cache directory as the agent manages it: layout, safety checks, locks, manifest and staging.

    Constructing one touches nothing on disk; :meth:`check` makes sure the directory
    is usable and safe (and, for a writer, creates the state folder and finishes
    what a killed run left). Warm, verify, invalidate and rewarm all work through it.

    :param root: the cache directory (OpenVINO's ``CACHE_DIR``); made absolute, not resolved.
    :param where: host (and model...) that errors name.
    :param lock_timeout: seconds to wait for a manifest or entry lock before :class:`LockTimeout`;
        ``None`` waits :data:`DEFAULT_LOCK_TIMEOUT`.
    :param policy: the access policy for what is created and accepted; ``None`` reads it from the environment.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        where: Location | None = None,
        lock_timeout: float | None = None,
        policy: AccessPolicy | None = None,
    ):
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.where = where or Location()
        self.policy = policy if policy is not None else AccessPolicy.make()
        self.lock_timeout = DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self.warnings: list[str] = []
        self._read_cache: tuple[tuple[int, int, int, int], Manifest] | None = None

    # -- layout ------------------------------------------------------------------------
    @property
    def state(self) -> Path:
        """The agent's state folder, ``.ovcache/`` inside the cache directory (OpenVINO ignores it)."""
        return self.root / STATE_DIR

    @property
    def manifest_path(self) -> Path:
        """The manifest file: what the agent manages here."""
        return self.state / "manifest.json"

    @property
    def stat_cache_path(self) -> Path:
        """The fingerprint stat cache, which spares re-hashing unchanged model files (:class:`.fingerprint.StatCache`)."""
        return self.state / "fingerprints.json"

    @property
    def host_facts_path(self) -> Path:
        """The host facts file: runtime build and CPU instruction set, remembered to avoid an OpenVINO import."""
        return self.state / "host.json"

    @property
    def staging_root(self) -> Path:
        """Where private staging folders are made: on the blobs' filesystem, so publishing is one rename."""
        return self.state / "staging"

    @property
    def locks_root(self) -> Path:
        """The per-entry lock files (:meth:`entry_lock`)."""
        return self.state / "locks"

    @property
    def reserve_path(self) -> Path:
        """Space kept allocated so invalidation can still journal on a full disk (:meth:`ensure_reserve`)."""
        return self.state / "reserve"

    # -- a layout nobody can steer ------------------------------------------------------
    def _owners(self) -> set[int]:
        """Who may own what the agent writes under ``.ovcache/``: its own user and the cache directory's owner."""
        owners = {os.geteuid()}
        with contextlib.suppress(OSError):
            owners.add(os.stat(self.root).st_uid)
        return owners

    def _refuse(self, path: Path, problem: str) -> UnsafeCacheDir:
        return UnsafeCacheDir(
            f"{path} {problem}; the agent never follows links or writes into folders of other users under {STATE_DIR}/, "
            "so nothing was created or deleted",
            self.where,
            hint=f"check who changed {self.state}, then remove the offending entry (the agent recreates what it needs)",
        )

    def _expect(self, path: Path, kind: str, owners: set[int] | None) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        except PermissionError:
            if owners is None:
                return  # a reader that may not look inside does not write there either
            raise
        if stat.S_ISLNK(st.st_mode):
            raise self._refuse(path, f"is a symbolic link (to {os.readlink(path)})")
        if kind == "dir" and not stat.S_ISDIR(st.st_mode):
            raise self._refuse(path, "is not a folder")
        if kind == "file" and not stat.S_ISREG(st.st_mode):
            raise self._refuse(path, "is not a regular file")
        if owners is not None and st.st_uid not in owners:
            raise self._refuse(path, f"is owned by uid {st.st_uid}, not by uid {' or '.join(map(str, sorted(owners)))}")

    def check_layout(self, writable: bool) -> None:
        """Refuse a state folder whose paths are links, of the wrong kind, or (for a writer) owned by someone else.

        Every path under ``.ovcache/`` the agent creates, writes, renames or deletes
        is looked at with ``lstat``, including what a killed run left in staging and
        the lock folder, before anything is touched.

        :param writable: also require the agent's (or the directory owner's) ownership and look inside
            staging and the locks, as a run that writes must.
        """
        owners = self._owners() if writable else None
        self._expect(self.state, "dir", owners)
        for folder in (self.staging_root, self.locks_root):
            self._expect(folder, "dir", owners)
        for path in (
            self.manifest_path,
            self.state / "manifest.lock",
            self.stat_cache_path,
            self.host_facts_path,
            self.reserve_path,
        ):
            self._expect(path, "file", owners)
        if not writable:
            return
        for folder in (self.staging_root, self.locks_root):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                path = folder / name
                self._expect(path, "file" if name.endswith(".lock") else "dir", owners)

    def check(self, create: bool, writable: bool) -> CacheDir:
        """Make sure the directory is usable, and safe, before anything is compiled into it or read from it.

        A path that is a file, a directory we cannot write, or a missing one when
        we may not create it each fail here with one line naming the host. So does
        a directory other users could write (see :mod:`.permissions`): its blobs
        and manifest cannot be trusted, for reading any more than for writing.

        Returns ``self``, so ``CacheDir(path).check(...)`` reads as one step.

        :param create: create a missing directory (a warm may; a verify may not).
        :param writable: the run will write: require write access, create the state folder, finish a
            journaled publish, clear dead runs' staging and keep the reserve.
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
        if writable and not os.access(self.root, os.W_OK | os.X_OK):
            raise CacheDirError(
                f"cache directory {self.root} is not writable by uid {os.geteuid()}",
                self.where,
                hint="run the agent as the user that owns the cache directory, or fix its permissions",
            )
        self.check_layout(writable)
        if writable:
            try:
                if self.policy.gid is not None and os.stat(self.root).st_uid == os.geteuid():
                    apply_dir_mode(self.root, self.policy)
                if not make_dir(self.state, self.policy) and os.stat(self.state).st_uid == os.geteuid():
                    # Ours: bring a state folder made by an older agent (0755) in line with the policy.
                    apply_dir_mode(self.state, self.policy)
                self.staging_root.mkdir(mode=0o700, exist_ok=True)
                self.locks_root.mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, f"cannot create {self.state}", self.where) from exc
            # (mkdir with exist_ok accepts a link made in between: look again now they exist.)
            self.check_layout(writable)
            # A publish killed half-way is finished first: its staged blobs are among the leftovers.
            self.recover_publish()
            # Leftovers of killed runs take disk space; clear them on every writing run.
            self.clean_stale_staging()
            self.ensure_reserve()
        return self

    def recover_publish(self) -> bool:
        """Roll forward a publish of several blobs that a killed run left journaled; True if there was one.

        The journal names the entry, its staging folder and its blobs. Under the
        manifest lock (so a live publisher has finished, and its journal is gone),
        every blob still staged is renamed into place; when all of them are then in
        the cache directory the entry is recorded as published. Otherwise (staged
        files lost) the journal is dropped and the entry stays what it was, which
        verify reports and rewarm rebuilds.
        """
        if not self.manifest_path.exists():
            return False
        from .fsutil import fsync_dir, regular_file_inside

        with self.manifest_lock():
            try:
                manifest = self.load_manifest()
            except ManifestCorrupt:
                return False  # the next update sets it aside, with a warning
            journal = manifest.publishing
            if journal is None:
                return False
            from .manifest import Entry

            stage = self.staging_root / journal["stage"]
            for name in journal["blobs"]:
                staged = regular_file_inside(stage, name) if stage.is_dir() and not stage.is_symlink() else None
                if staged is not None:
                    os.replace(staged, self.root / name)
            fsync_dir(self.root)
            entry = Entry.from_json(journal["entry"])
            if all(regular_file_inside(self.root, name) is not None for name in journal["blobs"]):
                from .fsutil import unlink_inside
                from .warm import stamp_published

                stamp_published(self.root, entry)
                previous = manifest.entries.get(entry.key)
                manifest.entries[entry.key] = entry
                for name in previous.all_blobs if previous is not None else []:
                    if name not in entry.all_blobs and not manifest.referencing(name):
                        unlink_inside(self.root, name)
                self.warnings.append(
                    f"finished publishing {entry.key} ({len(journal['blobs'])} blobs), which a killed run had begun"
                )
            else:
                self.warnings.append(f"a killed run's publish of {entry.key} could not be finished; the old entry stays")
            manifest.publishing = None
            manifest.save(self.where)
            return True

    # -- the reserve ---------------------------------------------------------------------
    def ensure_reserve(self) -> None:
        """Keep about twice the manifest's size allocated in ``.ovcache/reserve``, best effort.

        Invalidation journals what it deletes by writing a new manifest first; on a
        full disk that write fails, and the one command that frees space could not
        run. With the reserve released just before that write, it can, and the
        journal keeps it crash-safe.
        """
        try:
            manifest_size = os.stat(self.manifest_path).st_size
        except OSError:
            manifest_size = 0
        wanted = max(RESERVE_MIN_BYTES, 2 * manifest_size + (256 << 10))
        try:
            st = os.lstat(self.reserve_path)
            if stat.S_ISREG(st.st_mode) and st.st_blocks * 512 >= wanted:
                return
        except FileNotFoundError:
            pass
        except OSError:
            return
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, self.policy.file_mode)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, wanted)  # real blocks, not a sparse file
        except OSError:
            pass  # a full disk already: nothing to keep aside
        finally:
            os.close(fd)

    def release_reserve(self) -> bool:
        """Give the reserve back to the filesystem (on a full disk, just before a journal write); True if there was one."""
        try:
            os.unlink(self.reserve_path)
        except FileNotFoundError:
            return False
        return True

    # -- locks ---------------------------------------------------------------------------
    def _wait_flock(self, fd: int, path: Path, what: str) -> None:
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"timed out after {self.lock_timeout:g}s waiting for the {what} lock {path}", self.where
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    @contextlib.contextmanager
    def _lock(self, path: Path, what: str, flags: int = os.O_RDWR | os.O_CREAT) -> Iterator[None]:
        """flock ``path``, and make sure the locked file is still the one at ``path`` (retry if not).

        A lock file deleted or replaced while we waited would leave us holding a
        lock nobody else takes; ``O_NOFOLLOW`` keeps a link from steering where it is created.
        """
        while True:
            try:
                fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise self._refuse(path, "is a symbolic link") from None
                raise os_error(exc, f"cannot take the {what} lock {path}", self.where) from exc
            try:
                self._wait_flock(fd, path, what)
                held = os.fstat(fd)
                try:
                    now = os.lstat(path)
                    same = (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                break
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def manifest_lock(self) -> contextlib.AbstractContextManager[None]:
        """Held for every read-modify-write of the manifest and around publish and delete.

        Taken on the ``.ovcache`` folder itself: a lock file could be deleted
        while a writer holds it, letting a second writer in and losing an update.
        A folder can be opened read-only, so a reader in the serving group can
        take it too (verify re-checks what it found under it).
        """
        return self._lock(self.state, "manifest", _NOFOLLOW_DIR)

    @trace.traced_cm("cache.entry_lock.take", "cache.entry_lock.release")
    def entry_lock(self, key: str) -> contextlib.AbstractContextManager[None]:
        """Held for a whole warm of one entry, so N concurrent warm-ups compile it once.

        :param key: the manifest entry's key (:func:`.manifest.entry_key`); the lock file is named by its hash.
        """
        import blake3

        name = blake3.blake3(key.encode()).hexdigest()[:24]
        return self._lock(self.locks_root / f"{name}.lock", f"entry {key}")

    # -- manifest ------------------------------------------------------------------------
    @trace.traced("cache.read_manifest")
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

    @trace.traced("cache.load_manifest")
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

    @trace.traced_cm("cache.update_manifest.load", "cache.update_manifest.save")
    @contextlib.contextmanager
    def update_manifest(self, repair: bool = True, critical: bool = False) -> Iterator[Manifest]:
        """Lock, load, let the caller change it, save atomically.

        A corrupt manifest is set aside under a dated name (never deleted) and
        replaced by an empty one when ``repair`` is set; the blobs it described
        become unmanaged until the next warm re-records them. ``critical`` holds
        SIGTERM/SIGINT/SIGHUP from when the lock is taken until the manifest is
        saved, for a caller whose changes on disk must reach the manifest too.

        :param repair: set a corrupt manifest aside and start an empty one; otherwise raise :class:`ManifestCorrupt`.
        :param critical: defer the catchable signals until the manifest is saved.
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
        """Rename the manifest to a dated ``manifest.corrupt-...json`` beside it, kept for a person to inspect; returns the new path."""
        stamp = utcnow().replace(":", "").replace("+0000", "Z")
        aside = self.state / f"manifest.corrupt-{stamp}-{uuid.uuid4().hex[:6]}.json"
        os.replace(self.manifest_path, aside)
        return aside

    # -- blobs -----------------------------------------------------------------------------
    @trace.traced("cache.blob_names")
    def blob_names(self) -> list[str]:
        """Regular ``<hash>.blob`` files at the top of the directory (symlinks are not blobs)."""
        names = []
        with os.scandir(self.root) as it:
            for entry in it:
                if is_blob_name(entry.name) and entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
        return sorted(names)

    # -- staging ---------------------------------------------------------------------------
    def _open_staging(self) -> int:
        """A descriptor on the staging folder itself, refusing a link in its place."""
        try:
            return os.open(self.staging_root, _NOFOLLOW_DIR)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise self._refuse(self.staging_root, "is not a real folder") from None
            raise os_error(exc, f"cannot open staging folder {self.staging_root}", self.where) from exc

    @trace.traced_cm("cache.staging.create", "cache.staging.remove")
    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A private, empty folder on the cache filesystem, removed afterwards.

        Its companion ``.lock`` is flock-ed for the folder's lifetime, so a later
        run can tell a dead owner's leftovers (lock free) from a live one's. It is
        created and removed through a descriptor on the staging folder, so a
        staging folder swapped for a link meanwhile is not followed.
        """
        self.clean_stale_staging()
        ident = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        dir_fd = self._open_staging()
        lock_name = f"{ident}.lock"
        fd = -1
        try:
            fd = os.open(lock_name, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                os.mkdir(ident, 0o700, dir_fd=dir_fd)
            except OSError as exc:
                raise os_error(exc, f"cannot create staging folder in {self.staging_root}", self.where) from exc
            yield self.staging_root / ident
        finally:
            with contextlib.suppress(OSError):
                remove_tree_at(dir_fd, ident)
            with contextlib.suppress(OSError):
                os.unlink(lock_name, dir_fd=dir_fd)
            if fd >= 0:
                os.close(fd)
            os.close(dir_fd)

    def clean_stale_staging(self) -> int:
        """Remove staging folders whose owner is gone; returns how many.

        Everything goes through a descriptor on the staging folder: a lock that is
        a link is not opened, a leftover that is a link is not followed (it is
        refused by :meth:`check_layout` before this runs, and skipped here if it
        appeared since).
        """
        try:
            dir_fd = self._open_staging()
        except CacheDirError:
            if not os.path.lexists(self.staging_root):
                return 0
            raise
        removed = 0
        try:
            for name in os.listdir(dir_fd):
                if not name.endswith(".lock"):
                    continue
                try:
                    fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                except OSError:
                    continue
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # its owner is alive
                    folder = name[: -len(".lock")]
                    try:
                        kind = os.lstat(folder, dir_fd=dir_fd).st_mode
                    except FileNotFoundError:
                        kind = None
                    if kind is not None and stat.S_ISDIR(kind):
                        # Every level is opened with O_NOFOLLOW: links inside are unlinked, never followed.
                        with contextlib.suppress(OSError):
                            remove_tree_at(dir_fd, folder)
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(name, dir_fd=dir_fd)
                    removed += 1
                finally:
                    os.close(fd)
        finally:
            os.close(dir_fd)
        return removed
