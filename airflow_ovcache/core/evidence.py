"""Evidence from the server's side: what the cache directory itself shows about who read what.

A load check or ``--confirm`` proves that *a compile following profile P* loads a
blob from cache; it says nothing about the real server, which may compile a
different call and never read the blob. Two things in the directory do speak
for the server:

- **served**: a managed blob whose access time moved after it was published was
  read by someone. Under Linux's default ``relatime`` the first read after a
  write (or after a ctime change, such as the rename that published it) updates
  the atime, so ``st_atime > published`` means "read since publishing". The
  agent's own reads must not count: every read of a blob by the agent goes
  through :func:`open_blob`, which uses ``O_NOATIME``; where the kernel refuses
  that (the agent does not own the blob and lacks ``CAP_FOWNER``) the blob is
  remembered and its evidence is ``unknown``. ``noatime`` mounts never move the
  atime, and network or FUSE filesystems do not keep it reliably: ``unknown``.
- **server compiled something else**: a blob no entry accounts for that appeared
  after a warm-up was written by a process that compiled a call no warm-up made.
  Its header's ``file_info`` hashes the model path, mtime and size for a by-path
  compile, which the agent can compute for each entry's model file, so the
  entry it shadows is often known exactly; otherwise the publish-time window is
  the best guess.

Standard library only: ``status`` uses this and must stay cheap (one ``lstat``
per blob and one read of ``/proc/self/mountinfo`` per run).
"""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..protocol import EvidenceState

SERVED, NOT_SERVED_YET, UNKNOWN = EvidenceState.SERVED, EvidenceState.NOT_SERVED_YET, EvidenceState.UNKNOWN

# An orphan written this long after the latest earlier publish is not attributed to it by time alone.
SHADOW_WINDOW_NS = 24 * 3600 * 10**9
SERVER_COMPILED_HINT = (
    "the server compiles with another profile, path or properties than the warm-up: "
    "check the serving profile, the model path the server sees, and its properties"
)

_NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "ceph", "glusterfs", "afs", "lustre", "gpfs", "davfs", "sshfs"}
_O_NOATIME = getattr(os, "O_NOATIME", 0)

# Blobs this process had to read without O_NOATIME: its own read may be what moved their atime.
_touched_lock = threading.Lock()
_touched: set[str] = set()


def _key(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.fspath(path))


def open_blob(path: str | os.PathLike[str]) -> int:
    """A read-only descriptor on a blob that does not move its access time, if the kernel allows.

    ``O_NOATIME`` is refused with ``EPERM`` to anyone but the file's owner (or a
    holder of ``CAP_FOWNER``); then the blob is opened normally and recorded, so
    this run reports its evidence as ``unknown`` rather than counting its own
    read as the server's.

    :param path: the blob file.
    """
    flags = os.O_RDONLY | os.O_CLOEXEC
    if _O_NOATIME:
        try:
            return os.open(path, flags | _O_NOATIME)
        except PermissionError as exc:
            if exc.errno != errno.EPERM:
                raise
    fd = os.open(path, flags)
    if _O_NOATIME:
        with _touched_lock:
            _touched.add(_key(path))
    return fd


def read_without_atime(path: str | os.PathLike[str]) -> bool:
    """Whether this process read the blob at ``path`` without ``O_NOATIME``.

    :param path: the blob file (compared as an absolute path).
    """
    with _touched_lock:
        return _key(path) in _touched


def forget_reads() -> None:
    """Clear the record of reads without ``O_NOATIME`` (tests; a long-lived process between runs)."""
    with _touched_lock:
        _touched.clear()


def iso_ns(ns: int | None) -> str | None:
    """A nanosecond timestamp as ISO 8601 UTC to the second (how evidence reports times); None stays None.

    :param ns: nanoseconds since the epoch, as ``stat`` gives them.
    """
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat(timespec="seconds")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


# -- mounts ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: enough to tell whether access times on it can show a read.

    ``options`` are the per-mount options (``noatime`` lives here), ``super_options``
    the filesystem's own.
    """

    mount_point: str
    fs_type: str
    options: frozenset[str]
    super_options: frozenset[str]

    def atime_problem(self) -> str | None:
        """Why atimes on this mount cannot show a read, or None when they can."""
        where = f"{self.mount_point} ({self.fs_type})"
        if "noatime" in self.options or "noatime" in self.super_options:
            return f"the cache directory's filesystem {where} is mounted noatime: reads leave no trace"
        if self.fs_type.startswith("fuse") or self.fs_type.split(".")[0] in _NETWORK_FS:
            return f"the cache directory is on a network or FUSE filesystem {where}, whose access times are not reliable"
        return None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts listed in ``/proc/self/mountinfo``'s text; malformed lines are skipped.

    :param text: the file's content (tests pass their own).
    """
    mounts = []
    for line in text.splitlines():
        parts = line.split(" ")
        if "-" not in parts:
            continue
        sep = parts.index("-")
        if sep < 6 or len(parts) < sep + 3:
            continue
        mounts.append(
            Mount(
                mount_point=_unescape(parts[4]),
                fs_type=parts[sep + 1],
                options=frozenset(parts[5].split(",")),
                super_options=frozenset(parts[sep + 3].split(",")) if len(parts) > sep + 3 else frozenset(),
            )
        )
    return mounts


def mount_of(path: str | os.PathLike[str], mountinfo: str | None = None) -> Mount | None:
    """The mount holding ``path``: the longest mount point that is a prefix of its real path (the last one wins on ties).

    :param path: a file or folder.
    :param mountinfo: ``/proc/self/mountinfo``'s text; ``None`` reads it (and gives None if it cannot).
    """
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo") as handle:
                mountinfo = handle.read()
        except OSError:
            return None
    real = os.path.realpath(path)
    best: Mount | None = None
    for mount in parse_mountinfo(mountinfo):
        point = mount.mount_point
        inside = real == point or point == "/" or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best.mount_point)):
            best = mount
    return best


def _has_cap_fowner() -> bool:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 3))
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


# -- per entry ---------------------------------------------------------------------------------


@dataclass
class Evidence:
    """What the cache directory shows about whether the server read an entry's blobs."""

    state: str  # served | not-served-yet | unknown
    reason: str
    since: str | None = None  # when the entry was published
    at: str | None = None  # served: the latest recorded read (the first one after publishing, or a later one a day on)
    seconds: float | None = None  # not-served-yet: how long since publishing

    def to_json(self) -> dict[str, Any]:
        """The evidence as the agent reports it beside an entry (every field)."""
        return dict(self.__dict__)

    def short(self) -> str:
        """One cell of a table or a report: ``served``, ``not served yet (3 h)``, ``unknown (noatime mount)``."""
        if self.state == SERVED:
            return "served"
        if self.state == NOT_SERVED_YET:
            return f"not served yet ({_age(self.seconds or 0.0)})"
        return "unknown"


class EvidenceReader:
    """Reads the evidence of one cache directory: the mount once, then one ``lstat`` per blob.

    :param root: the cache directory.
    :param mountinfo: ``/proc/self/mountinfo``'s text, for tests; ``None`` reads the real one.
    :param now_ns: the time "now" for ages, in ns; ``None`` takes the clock once, so one run's ages agree.
    """

    def __init__(self, root: Path, mountinfo: str | None = None, now_ns: int | None = None) -> None:
        self.root = root
        mount = mount_of(root, mountinfo)
        self.mount_problem = mount.atime_problem() if mount else None
        self.now_ns = now_ns if now_ns is not None else time.time_ns()
        self._euid = os.geteuid()
        self._fowner: bool | None = None

    def _cannot_avoid_atime(self, st: os.stat_result) -> bool:
        """Whether the agent's reads of this blob (this run or an earlier one) move its atime."""
        if not _O_NOATIME:
            return True
        if st.st_uid == self._euid:
            return False
        if self._fowner is None:
            self._fowner = _has_cap_fowner()
        return not self._fowner

    def for_entry(self, entry: Any) -> Evidence:
        """Evidence for a manifest entry (anything with ``all_blobs`` and ``published_at_ns``).

        ``served`` only when every blob of the entry was read since publishing; ``unknown``
        whenever the agent's own reads or the mount make the access time meaningless.

        :param entry: the manifest entry.
        """
        published = entry.published_at_ns
        since = iso_ns(published)
        if published is None:
            return Evidence(UNKNOWN, "the entry records no publish time (written by an older agent); warm it again", since)
        if self.mount_problem:
            return Evidence(UNKNOWN, self.mount_problem, since)
        read, unread = [], []
        latest = 0
        for name in entry.all_blobs:
            path = self.root / name
            try:
                st = os.lstat(path)
            except OSError:
                return Evidence(UNKNOWN, f"blob {name} cannot be looked at (missing?)", since)
            if read_without_atime(path) or self._cannot_avoid_atime(st):
                return Evidence(
                    UNKNOWN,
                    f"the agent (uid {self._euid}) had to read {name} without O_NOATIME (not its owner, no CAP_FOWNER), "
                    "so its own read may be what moved the access time; run the agent as the cache directory's owner",
                    since,
                )
            if st.st_atime_ns > published:
                read.append(name)
                latest = max(latest, st.st_atime_ns)
            else:
                unread.append(name)
        age = round(max(0.0, (self.now_ns - published) / 1e9), 1)
        if not unread:
            what = "its blob" if len(read) == 1 else f"all {len(read)} of its blobs"
            return Evidence(SERVED, f"{what} read since publishing (by a process other than the agent)", since, iso_ns(latest))
        if read:
            return Evidence(
                NOT_SERVED_YET,
                f"only part of its blobs were read since publishing; not read: {', '.join(unread)}",
                since,
                seconds=age,
            )
        return Evidence(NOT_SERVED_YET, f"no read since it was published {_age(age)} ago", since, seconds=age)


# -- orphans -------------------------------------------------------------------------------------

_MASK = (1 << 64) - 1
_MUL = ((0xC6A4A793 << 32) + 0x5BD1E995) & _MASK


def _shift_mix(v: int) -> int:
    return v ^ (v >> 47)


def _std_hash_bytes(data: bytes, seed: int = 0xC70F6907) -> int:
    """libstdc++'s 64-bit ``std::hash<std::string>`` (``_Hash_bytes``), which OpenVINO's file_info uses."""
    n = len(data)
    h = (seed ^ (n * _MUL)) & _MASK
    aligned = n & ~7
    for i in range(0, aligned, 8):
        word = (_shift_mix((int.from_bytes(data[i : i + 8], "little") * _MUL) & _MASK) * _MUL) & _MASK
        h = ((h ^ word) * _MUL) & _MASK
    if n & 7:
        h = ((h ^ int.from_bytes(data[aligned:], "little")) * _MUL) & _MASK
    h = (_shift_mix(h) * _MUL) & _MASK
    return _shift_mix(h)


def _hash_combine(seed: int, value: int) -> int:
    return (seed ^ ((value + 0x9E3779B9 + ((seed << 6) & _MASK) + (seed >> 2)) & _MASK)) & _MASK


def file_info(model_path: str, size: int, mtime_s: int) -> str:
    """The ``file_info`` OpenVINO writes into a by-path blob's header for this model file (measured on 2026.4, Linux).

    It combines the absolute path with the file's whole-second mtime and size;
    a by-model compile writes the hash of the empty path instead.

    :param model_path: the model file's path as the compile was given it (made absolute, not resolved).
    :param size: the file's size in bytes.
    :param mtime_s: its mtime in whole seconds.
    """
    seed = _hash_combine(0, _std_hash_bytes(os.path.abspath(model_path).encode()))
    seed = _hash_combine(seed, mtime_s & _MASK)
    return str(_hash_combine(seed, size & _MASK))


BY_MODEL_FILE_INFO = str(_hash_combine(0, _std_hash_bytes(b"")))


def _entry_file_infos(entry: Any) -> set[str]:
    infos = set()
    if entry.model_file_stat and len(entry.model_file_stat) == 2:
        infos.add(file_info(entry.model_path, entry.model_file_stat[0], entry.model_file_stat[1]))
    try:
        st = os.stat(entry.model_path)
        infos.add(file_info(entry.model_path, st.st_size, int(st.st_mtime)))
    except OSError:
        pass
    return infos


def _read_since(root: Path, entry: Any) -> bool:
    """Whether every blob of the entry was read since it was published (one lstat each)."""
    try:
        return all(os.lstat(root / name).st_atime_ns > entry.published_at_ns for name in entry.all_blobs)
    except OSError:
        return False


@dataclass
class OrphanEvidence:
    """What an orphan blob says about who wrote it.

    ``server_compiled`` is True for a blob written after a warm-up by a process that
    compiled a call no warm-up made; ``shadows`` is then the key of the entry it most
    likely stands in for, and ``hint`` says what to check in the serving set-up.
    """

    mtime: str
    runtime: str | None
    server_compiled: bool
    shadows: str | None = None
    reason: str = ""
    hint: str = ""

    def to_json(self) -> dict[str, Any]:
        """The orphan's evidence as the agent reports it (every field)."""
        return dict(self.__dict__)


def describe_orphan(path: Path, entries: Iterable[Any], st: os.stat_result | None = None) -> OrphanEvidence:
    """Whether an orphan is a server's compile of something no warm-up made, and which entry it most likely shadows.

    Reads the blob's header with ``O_NOATIME`` (a few KB). An orphan older than
    every managed entry predates the agent's work here and stays a plain orphan.

    :param path: the orphan blob.
    :param entries: the manifest's entries, to match against.
    :param st: the blob's ``lstat`` if the caller has it already; ``None`` takes it.
    """
    from .blobfile import BlobHeaderError, read_header

    st = st or os.lstat(path)
    entries = list(entries)
    mtime = iso_ns(st.st_mtime_ns) or ""
    try:
        header = read_header(path)
        runtime: str | None = header.runtime_version
        info: str | None = header.file_info
    except (OSError, BlobHeaderError):
        runtime, info = None, None
    published = [(e.published_at_ns, e) for e in entries if e.published_at_ns is not None]
    if not published or st.st_mtime_ns <= min(p for p, _ in published):
        return OrphanEvidence(mtime, runtime, False, reason="older than every managed entry")
    shadow, how = None, ""
    if info and info != BY_MODEL_FILE_INFO:
        for entry in entries:
            if info in _entry_file_infos(entry) and (runtime is None or entry.runtime == runtime):
                shadow, how = entry, f"its header names this entry's model file {entry.model_path} (a by-path compile)"
                break
    if shadow is None:
        candidates = [
            (p, e)
            for p, e in published
            if p < st.st_mtime_ns and st.st_mtime_ns - p <= SHADOW_WINDOW_NS and (runtime is None or e.runtime == runtime)
        ]
        # An entry the server reads is not what it replaced: prefer the ones nobody read since publishing.
        unread = [(p, e) for p, e in candidates if not _read_since(path.parent, e)]
        if unread:
            candidates = unread
        if candidates:
            shadow = max(candidates, key=lambda pe: (pe[0], pe[1].key))[1]
            kind = "by-model" if info == BY_MODEL_FILE_INFO else "by-path of a model file no entry has"
            how = (
                f"written {_age((st.st_mtime_ns - shadow.published_at_ns) / 1e9)} after that entry was published "
                f"({kind} compile; a guess by time{', among entries nobody has read' if unread else ''})"
            )
    reason = "written after a warm-up by a process that compiled a call no warm-up made"
    reason += f"; most likely shadows {shadow.key}: {how}" if shadow else "; no managed entry matches it"
    return OrphanEvidence(mtime, runtime, True, shadow.key if shadow else None, reason, SERVER_COMPILED_HINT)
