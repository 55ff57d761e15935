"""Who may read and write a cache directory, and refusing one that is not safe.

A blob is compiled code that OpenVINO loads without question, so whoever can
write the cache directory (or rename it away and put another in its place)
decides what the serving application runs. The agent therefore:

* creates what it creates private: the cache directory and its ``.ovcache``
  state folder 0700, the manifest and state files 0600, blobs 0400; or, with a
  serving group (``--group`` / ``OVCACHE_GROUP``), 2750 / 0640 / 0440 with that
  group, so a serving user in the group can read but never write;
* refuses a cache directory that other users can write, or one under a folder
  they can write without the sticky bit (they could swap it), and warns about
  one owned by another user or writable by its group; ``--unsafe-cache-dir``
  (``OVCACHE_UNSAFE_CACHE_DIR``) makes that ``strict`` (refuse all of it) or
  ``warn`` (refuse nothing).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.location import Location
from .errors import UnsafeCacheDir, UsageError

UNSAFE_POLICIES = ("refuse", "strict", "warn")
GROUP_ENV = "OVCACHE_GROUP"
UNSAFE_ENV = "OVCACHE_UNSAFE_CACHE_DIR"


def resolve_group(group: str | int | None) -> int | None:
    """A group name or number as a gid; None for no serving group.

    Raises :class:`UsageError` for a group name this host does not know.

    :param group: a group name, a gid (as int or digits), or ``None``/``""`` for none.
    """
    if group is None or group == "":
        return None
    if isinstance(group, int) or (str(group).isascii() and str(group).isdigit()):
        return int(group)
    import grp

    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        raise UsageError(f"group {group!r} does not exist on this host", hint="create it or pass a numeric gid") from None


@dataclass(frozen=True)
class AccessPolicy:
    """How the agent sets modes on what it creates, and what it accepts of what it finds.

    :param gid: the serving group's gid, which makes created files group-readable; ``None`` keeps them private.
    :param unsafe: what to do with an unsafe cache directory: ``refuse`` (the severe findings), ``strict``
        (every finding) or ``warn`` (none).
    """

    gid: int | None = None
    unsafe: str = "refuse"

    def __post_init__(self) -> None:
        if self.unsafe not in UNSAFE_POLICIES:
            raise UsageError(f"--unsafe-cache-dir must be one of {', '.join(UNSAFE_POLICIES)}, not {self.unsafe!r}")

    @classmethod
    def make(cls, group: str | int | None = None, unsafe: str | None = None) -> AccessPolicy:
        """From flags, falling back to ``OVCACHE_GROUP`` and ``OVCACHE_UNSAFE_CACHE_DIR``.

        :param group: ``--group``: a group name or gid; ``None`` reads ``OVCACHE_GROUP``.
        :param unsafe: ``--unsafe-cache-dir`` (any case); ``None`` reads ``OVCACHE_UNSAFE_CACHE_DIR``, then ``refuse``.
        """
        if group is None:
            group = os.environ.get(GROUP_ENV) or None
        return cls(resolve_group(group), (unsafe or os.environ.get(UNSAFE_ENV) or "refuse").lower())

    @property
    def dir_mode(self) -> int:
        """Folders the agent creates: 0700, or 2750 with a serving group (setgid so files inherit the group)."""
        return 0o2750 if self.gid is not None else 0o700

    @property
    def file_mode(self) -> int:
        """The manifest and state files: 0600, or 0640 with a serving group."""
        return 0o640 if self.gid is not None else 0o600

    @property
    def blob_mode(self) -> int:
        """Published blobs, which nobody should rewrite in place: 0400, or 0440 with a serving group."""
        return 0o440 if self.gid is not None else 0o400


def make_dir(path: Path, policy: AccessPolicy) -> bool:
    """Create ``path`` (one level) with the policy's mode and group; False if it existed.

    It is created 0700 first, so it is never open to others before its mode is set.

    :param path: the folder to create; its parent must exist.
    :param policy: the access policy giving the mode and group.
    """
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        return False
    apply_dir_mode(path, policy)
    return True


def apply_dir_mode(path: Path, policy: AccessPolicy) -> None:
    """Give a directory we own the policy's group and mode (setgid, so new files inherit the group).

    :param path: the folder.
    :param policy: the access policy giving the mode and group.
    """
    if policy.gid is not None and os.stat(path).st_gid != policy.gid:
        os.chown(path, -1, policy.gid)
    os.chmod(path, policy.dir_mode)


def apply_file_mode(path: Path, mode: int, policy: AccessPolicy) -> None:
    """Give a file we wrote the policy's group and ``mode``, before it is renamed to its final name.

    :param path: the file.
    :param mode: its permission bits (the policy's file or blob mode).
    :param policy: the access policy giving the group.
    """
    if policy.gid is not None and os.stat(path).st_gid != policy.gid:
        os.chown(path, -1, policy.gid)
    os.chmod(path, mode)


@dataclass
class Finding:
    """One reason a cache directory is not safe: the path, what is wrong with it, and whether it is refused by default."""

    path: str
    problem: str
    severe: bool  # refused under the default policy


@dataclass
class SafetyReport:
    """What :func:`inspect_tree` found; :func:`enforce` decides, under a policy, what is refused and what warned."""

    findings: list[Finding] = field(default_factory=list)

    def add(self, path: Path, problem: str, severe: bool) -> None:
        """Record one finding.

        :param path: the folder or file at fault.
        :param problem: what is wrong, worded to follow the path ("is writable by every user (mode 0777)").
        :param severe: refused under the default ``refuse`` policy, not only warned about.
        """
        self.findings.append(Finding(str(path), problem, severe))


def _mode(st: os.stat_result) -> str:
    return f"{stat.S_IMODE(st.st_mode):04o}"


def inspect_tree(root: Path, trusted_uids: set[int] | None = None, *, manifest: Path | None = None) -> SafetyReport:
    """What makes ``root`` unsafe: who besides its owner could change it or what it holds.

    Looks at the directory, its state folder and manifest, and every folder
    above it (someone who can rename a parent can swap the whole cache).
    ``trusted_uids`` are the owners that are fine (default: this user and root).

    :param root: the cache directory; a missing one has nothing to report.
    :param trusted_uids: the owners that are fine; ``None`` means this user and root.
    :param manifest: the manifest file to check besides the state folder (it may live elsewhere).
    """
    trusted = trusted_uids if trusted_uids is not None else {os.geteuid(), 0}
    report = SafetyReport()
    try:
        st = os.stat(root)
    except FileNotFoundError:
        return report
    if st.st_mode & stat.S_IWOTH:
        report.add(root, f"is writable by every user (mode {_mode(st)})", True)
    elif st.st_mode & stat.S_IWGRP:
        report.add(root, f"is writable by its group {st.st_gid} (mode {_mode(st)})", False)
    if st.st_uid not in trusted:
        report.add(root, f"is owned by uid {st.st_uid}, not by uid {os.geteuid()}", False)
    for path in (root / ".ovcache", manifest):
        if path is None:
            continue
        try:
            inner = os.lstat(path)
        except (FileNotFoundError, PermissionError):
            continue
        if stat.S_ISLNK(inner.st_mode):
            report.add(path, "is a symbolic link", True)
        elif inner.st_mode & stat.S_IWOTH:
            report.add(path, f"is writable by every user (mode {_mode(inner)})", True)
        elif inner.st_uid not in trusted:
            report.add(path, f"is owned by uid {inner.st_uid}", False)
    for parent in Path(os.path.realpath(root)).parents:
        try:
            pst = os.stat(parent)
        except OSError:
            continue
        if pst.st_mode & stat.S_IWOTH and not pst.st_mode & stat.S_ISVTX:
            report.add(
                parent, f"(a folder above the cache) is writable by every user without the sticky bit (mode {_mode(pst)})", True
            )
        elif pst.st_uid not in trusted:
            report.add(parent, f"(a folder above the cache) is owned by uid {pst.st_uid}", False)
    return report


def enforce(report: SafetyReport, policy: AccessPolicy, root: Path, where: Location | None = None) -> list[str]:
    """Raise :class:`UnsafeCacheDir` for what the policy refuses; return warnings for the rest.

    :param report: what :func:`inspect_tree` found.
    :param policy: the access policy, whose ``unsafe`` setting decides.
    :param root: the cache directory, for the message.
    :param where: host/model/version/device for the error.
    """
    refused = [f for f in report.findings if policy.unsafe == "strict" or (f.severe and policy.unsafe == "refuse")]
    if refused:
        what = "; ".join(f"{f.path} {f.problem}" for f in refused)
        raise UnsafeCacheDir(f"cache directory {root} is not safe to use: {what}", where)
    return [f"unsafe cache directory: {f.path} {f.problem}" for f in report.findings]
