"""Content fingerprint of a model version, with a stat cache like git's index.

OpenVINO's own staleness check hashes only the model file's path, mtime (in
seconds) and size, not its weights: a ``model.bin`` swapped in place for a
same-size file is served stale. We hash every byte of every file in the version
folder instead. To keep that cheap on the hot path (a no-op warm, a nightly
verify), each file's digest is remembered against its (size, mtime_ns,
ctime_ns, inode); a file whose stat is unchanged is not read again. ``ctime`` is
in the key because user space cannot set it: ``touch -r`` or ``cp -p`` can put
an old mtime back, but not an old ctime.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.location import Location
from . import trace
from .errors import InvalidName, ModelNotFound

# A file modified this recently may be modified again within the same timestamp
# tick after we hash it ("racy git"); such files are hashed but not remembered.
RACY_SECONDS = 2.0
_CHUNK = 1 << 20
_MMAP_FROM = 1 << 20


@dataclass(frozen=True)
class Fingerprint:
    """A version folder's content hash (``blake3:...``) with how many files and bytes it covers.

    Recorded with every manifest entry: a model swapped in place changes the digest,
    which is what tells a stale blob from a good one.
    """

    digest: str
    files: int
    size: int


@dataclass
class FingerprintStats:
    """How much a :class:`Fingerprinter` actually read versus took from the stat cache; reported to show a no-op is cheap."""

    files_hashed: int = 0
    bytes_hashed: int = 0
    files_from_cache: int = 0


def _key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


@dataclass
class StatCache:
    """Digests of files keyed by absolute path and validated by stat. Best effort: a bad file is ignored."""

    path: Path | None = None
    entries: dict[str, list[object]] = field(default_factory=dict)
    dirty: bool = False
    racy_seconds: float = RACY_SECONDS
    mode: int = 0o600  # 0640 when a serving group may read it (the serving check reuses it)

    @classmethod
    @trace.traced("statcache.load")
    def load(cls, path: Path | None, racy_seconds: float = RACY_SECONDS, mode: int = 0o600) -> StatCache:
        """The stat cache stored at ``path``; an empty one if it is missing, damaged or of another schema.

        :param path: the stat cache file in the cache directory's state folder; ``None`` keeps it in memory only.
        :param racy_seconds: files changed this recently are hashed but not remembered (see :data:`RACY_SECONDS`).
        :param mode: the file's permission bits when saved (0640 when a serving group reads it).
        """
        cache = cls(path, racy_seconds=racy_seconds, mode=mode)
        if path is None:
            return cache
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("schema") == 1 and isinstance(data.get("files"), dict):
                cache.entries = data["files"]
        except (OSError, ValueError):
            pass  # a missing or damaged stat cache only costs a re-hash
        return cache

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The remembered digest of ``path`` if its size, mtime, ctime and inode are unchanged; else None.

        :param path: the file's absolute path.
        :param st: its current ``stat``.
        """
        hit = self.entries.get(path)
        if isinstance(hit, list) and len(hit) == 5 and hit[:4] == _key(st):
            return str(hit[4])
        return None

    def store(self, path: str, st: os.stat_result, digest: str) -> None:
        """Remember a digest against the stat it was read under, unless the file changed too recently to trust it.

        :param path: the file's absolute path.
        :param st: the ``stat`` taken before hashing.
        :param digest: the file's content digest.
        """
        now = time.time()
        if now - st.st_mtime < self.racy_seconds or now - st.st_ctime < self.racy_seconds:
            self.entries.pop(path, None)
            return
        self.entries[path] = [*_key(st), digest]
        self.dirty = True

    @trace.traced("statcache.save")
    def save(self) -> None:
        """Write the cache back if anything changed; a failure is ignored (it only costs a re-hash next time)."""
        if self.path is None or not self.dirty:
            return
        from .fsutil import atomic_write  # only a save needs it; the serving helper only loads the cache

        try:
            atomic_write(self.path, json.dumps({"schema": 1, "files": self.entries}).encode(), self.mode)
            self.dirty = False
        except Exception:  # noqa: BLE001 - losing the stat cache only costs a re-hash next time
            pass


def hash_file(path: str, size: int) -> str:
    """BLAKE3 of a file's content (hex), memory-mapped and multi-threaded for large files.

    :param path: the file.
    :param size: its size from ``stat``, which picks mmap (large) or one read (small).
    """
    import blake3

    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    if size >= _MMAP_FROM:
        hasher.update_mmap(path)
    else:
        with open(path, "rb") as handle:
            hasher.update(handle.read())
    return hasher.hexdigest()


class Fingerprinter:
    """Fingerprints version folders; one instance shares its stat cache across many folders.

    ``stats`` adds up what every :meth:`fingerprint` call hashed or found cached.

    :param stat_cache: the stat cache to consult and fill; ``None`` uses an in-memory one.
    """

    def __init__(self, stat_cache: StatCache | None = None) -> None:
        self.cache = stat_cache or StatCache()
        self.stats = FingerprintStats()

    @trace.traced("fingerprint")
    def fingerprint(self, directory: Path, where: Location | None = None, boundary: Path | None = None) -> Fingerprint:
        """Hash of (relative path, size, content digest) of every file under ``directory``, in sorted order.

        Symlinked files are followed only when they stay inside ``boundary`` (the
        repository root; by default the folder itself); anything leading out is
        refused, because then the fingerprint would not describe what the
        repository holds.

        :param directory: the version folder.
        :param where: model/version for the errors.
        :param boundary: the folder links may point into (the repository root); ``None`` means ``directory``.
        """
        import blake3

        where = where or Location()
        base = Path(os.path.abspath(directory))
        if not base.is_dir():
            raise ModelNotFound(f"model folder {base} does not exist", where)
        real_base = os.path.realpath(boundary or base)
        rows: list[tuple[str, int, str]] = []
        for rel, full in self._files(base, real_base, where):
            st = os.stat(full)
            digest = self.cache.lookup(full, st)
            if digest is None:
                digest = hash_file(full, st.st_size)
                self.cache.store(full, st, digest)
                self.stats.files_hashed += 1
                self.stats.bytes_hashed += st.st_size
            else:
                self.stats.files_from_cache += 1
            rows.append((rel, st.st_size, digest))
        if not rows:
            raise ModelNotFound(f"model folder {base} holds no files", where)
        total = blake3.blake3()
        for rel, size, digest in sorted(rows):
            total.update(f"{rel}\0{size}\0{digest}\n".encode())
        return Fingerprint("blake3:" + total.hexdigest(), len(rows), sum(r[1] for r in rows))

    def _files(self, base: Path, real_base: str, where: Location) -> list[tuple[str, str]]:
        out = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            for name in list(dirnames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    raise InvalidName(f"{full} is a symlinked folder inside a model version; copy it in instead", where)
            for name in filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    target = os.path.realpath(full)
                    if not target.startswith(real_base + os.sep):
                        raise InvalidName(f"{full} links out of the model repository", where)
                    if not os.path.isfile(target):
                        raise ModelNotFound(f"{full} is a dangling link", where)
                elif not stat.S_ISREG(os.lstat(full).st_mode):
                    continue
                out.append((os.path.relpath(full, base), full))
        return out
