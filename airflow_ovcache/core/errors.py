"""Errors a user can act on.

Every failure the agent reports is an :class:`OvcacheError` subclass carrying the
host, model, version and device it concerns and a hint saying what to do. The
message is rendered on one line because it ends up in a task log or a terminal
at 3 am, and the first line is often all that is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.codes import ErrorCode
from ..protocol.location import Location, this_host
from .text import one_line


@dataclass(eq=False)
class OvcacheError(Exception):
    """Base class of the agent's failures: a failure with its coordinates and a hint.

    ``code`` is stable and machine readable (the JSON output and the Airflow side
    branch on it); the message and hint are for people. The Airflow side's own
    failures are :class:`airflow_ovcache.hooks.errors.OvcacheHookError`; this one reaches
    a DAG only through the agent's JSON envelope.

    Subclasses take ``message``, ``where`` and ``hint`` in the same sense unless they say otherwise.

    :param message: what went wrong.
    :param where: the host, model, version and device it concerns, as far as known here.
    :param hint: what to do about it; ``""`` when there is nothing useful to add.
    :param code: the stable error code (``cache-dir``, ``usage``...).
    """

    message: str
    where: Location = field(default_factory=Location)
    hint: str = ""
    code: str = ErrorCode.ERROR

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def at(self, where: Location) -> OvcacheError:
        """Fill in coordinates that were not known where the error was raised.

        :param where: the coordinates known further out; those already set are kept.
        """
        self.where = self.where.merged(where)
        return self

    def one_line(self) -> str:
        """``host H, model M, ...: message (hint)`` on one line, as logs and terminals show it."""
        text = f"{self.where.label()}: {_flatten(self.message)}"
        if self.hint:
            text += f" ({_flatten(self.hint)})"
        return text

    def __str__(self) -> str:
        return self.one_line()

    def to_json(self) -> dict[str, Any]:
        """The envelope's ``error`` object (see docs/agent-json.md)."""
        return {
            "code": self.code,
            "message": _flatten(self.message),
            "hint": self.hint,
            "host": self.where.host or this_host(),
            "model": self.where.model,
            "version": self.where.version,
            "device": self.where.device,
        }


def _flatten(text: str) -> str:
    return one_line(text)


def openvino_message(exc: BaseException) -> str:
    """Reduce an OpenVINO exception to its meaningful last line.

    OpenVINO stacks "Exception from src/...cpp:NN:" frames above the real reason;
    the reason is the last non-empty line that is not such a frame.

    :param exc: what OpenVINO raised (it raises ``RuntimeError`` for nearly everything); when its text
        is empty, its type's name is returned.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from ")]
    return useful[-1] if useful else (lines[-1] if lines else type(exc).__name__)


class UsageError(OvcacheError):
    """A command-line argument the agent cannot take (exit code 2); the message names the flag.

    Also raised for the same mistakes made through the Python API (:mod:`airflow_ovcache.serving`)
    and in a fleet inventory, which are arguments too.

    :param message: what is wrong, naming the flag, file or keyword and the value given.
    :param hint: the form that would be accepted; ``""`` when the message says it already.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, hint: str = "", where: Location | None = None) -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.USAGE)


class InvalidName(OvcacheError):
    """A model or version name from input that is not a safe single path component.

    The hint is always the naming rule, so only the message and coordinates vary.

    :param message: which name or path was refused, and why (a symlinked folder, a link out of the repository...).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "model names and versions are single path components; versions are positive integers",
            ErrorCode.INVALID_NAME,
        )


class ModelNotFound(OvcacheError):
    """The model, version or model file asked for is not in the repository.

    :param message: which folder or file is missing (or empty, or a dangling link).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (check the repository path and the layout); ``""`` keeps it.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check the repository path and the <model>/<version>/ layout",
            ErrorCode.MODEL_NOT_FOUND,
        )


class ModelUnreadable(OvcacheError):
    """A model file exists but OpenVINO (or the file system) cannot read it.

    The hint is fixed: a truncated copy is the usual cause.

    :param message: what OpenVINO said (see :func:`openvino_message`) or the read error.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "OpenVINO cannot read or convert this model; check the files were copied whole",
            ErrorCode.MODEL_UNREADABLE,
        )


class UnknownDevice(OvcacheError):
    """OpenVINO on this host does not see the device asked for.

    :param device: the device asked for.
    :param available: the devices OpenVINO sees, listed in the message.
    :param where: the request's coordinates; the device is added."""

    def __init__(self, device: str, available: list[str], where: Location | None = None) -> None:
        super().__init__(
            f"device {device!r} is not present on this host",
            (where or Location()).merged(Location(device=device)),
            f"available devices: {', '.join(available) or 'none'}",
            ErrorCode.UNKNOWN_DEVICE,
        )


class UnknownProperty(OvcacheError):
    """The device does not support a compile property asked for.

    :param prop: the property's name.
    :param device: the device.
    :param where: the request's coordinates; the device is added."""

    def __init__(self, prop: str, device: str, where: Location | None = None) -> None:
        super().__init__(
            f"property {prop!r} is not supported by device {device}",
            (where or Location()).merged(Location(device=device)),
            f"list supported properties with 'ovcache devices --json'; fix the cache spec for {device}",
            ErrorCode.UNKNOWN_PROPERTY,
        )


class DeviceCannotCache(OvcacheError):
    """The device has no ``EXPORT_IMPORT``: OpenVINO writes no cache blob for it.

    :param device: the device.
    :param where: the request's coordinates; the device is added."""

    def __init__(self, device: str, where: Location | None = None) -> None:
        super().__init__(
            f"device {device} does not report EXPORT_IMPORT, so OpenVINO cannot cache compiled models for it",
            (where or Location()).merged(Location(device=device)),
            "warm another device or pass --no-cache-device=skip to skip it",
            ErrorCode.DEVICE_CANNOT_CACHE,
        )


class NoBlobWritten(OvcacheError):
    """A compile ran but left no new blob in the cache directory.

    :param message: what ran and what it did not write (the python profile's loader is named).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (can the device cache, is the spec the server's); ``""`` keeps it.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check that the device can cache and that the cache spec is what the server compiles",
            ErrorCode.NO_BLOB,
        )


class CompileFailed(OvcacheError):
    """OpenVINO failed to compile the model for the device.

    Also raised when the compile ran but its blob is unusable: unparsable, or not loaded
    from cache by the confirming fresh process.

    :param message: OpenVINO's reason (see :func:`openvino_message`), or what is wrong with the blob.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: what to check; ``""`` when nothing is known beyond the message.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.COMPILE_FAILED)


class CacheDirError(OvcacheError):
    """The cache directory cannot be used (not a directory, not writable...).

    :param message: which path, and what is wrong with it (a file, missing, not writable, an OS error).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: what to do (run as the owner, warm first...); ``""`` when the message says enough.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.CACHE_DIR)


class DiskFull(OvcacheError):
    """The cache directory's file system is full.

    The hint is fixed: it says that nothing was replaced and how to make room.

    :param message: what could not be written, or the bytes free against those needed.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "nothing was replaced; free space on the cache filesystem: 'ovcache invalidate' still works on a full disk "
            "(it keeps a small reserve for its journal), or 'ovcache invalidate --dry-run' lists blobs that can be deleted by hand",
            ErrorCode.DISK_FULL,
        )


class ManifestCorrupt(OvcacheError):
    """The cache's manifest cannot be read or is not one this agent wrote.

    :param message: which manifest, and why it is not trusted (what its parser said).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (``ovcache repair-manifest``); ``""`` keeps it.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "run 'ovcache repair-manifest' to set it aside and rebuild it; no blob was touched",
            ErrorCode.MANIFEST_CORRUPT,
        )


class LockTimeout(OvcacheError):
    """Another agent holds the cache directory's lock past the time allowed.

    The hint is fixed: wait, or allow a longer ``--lock-timeout``.

    :param message: which lock, and how long it was waited for.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "another ovcache process holds the lock; wait for it or raise --lock-timeout",
            ErrorCode.LOCK_TIMEOUT,
        )


class SpecConflict(OvcacheError):
    """Two sources of cache specs (flags, serving config) disagree about one model.

    The hint is fixed: one spec per model per cache directory.

    :param message: the blob file name and the entry that already owns it.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    """

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "two cache specs map to one blob file but produce different blobs; serve one spec per model per cache directory",
            ErrorCode.SPEC_CONFLICT,
        )


class EncryptionError(OvcacheError):
    """The cache encryption key is missing, unreadable or not a key.

    :param message: which key source (file, standard input) and what is wrong with it; never the key.
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: how to deliver a usable key (file mode, ``--encryption-key-stdin``...); ``""`` for none.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.ENCRYPTION)


class KeyMismatch(OvcacheError):
    """The blob was written under another encryption key than the one at hand.

    :param message: which blob, and how it was sealed (another key, or none).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (give the agent and the server the same key, then warm again); ``""`` keeps it.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "give the agent and the serving application the same key; after rotating a key, warm again",
            ErrorCode.KEY_MISMATCH,
        )


class UnsafeCacheDir(OvcacheError):
    """A cache directory other users can write: whoever writes it decides what the server runs.

    :param message: the directory or file, and what makes it unsafe (others can write it, a link...).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (fix the owner and mode, or pass ``--unsafe-cache-dir warn``); ``""`` keeps it.
    """

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint
            or "make it owned by the agent's user and not writable by others (chmod o-w,g-w); see docs/security.md, or pass --unsafe-cache-dir warn",
            ErrorCode.UNSAFE_CACHE_DIR,
        )


class IntegrityError(OvcacheError):
    """The serving side refused a blob: it is not the one the manifest vouches for.

    ``reason`` says which check failed (``not-warmed``, ``checksum``,
    ``stale-model``, ``runtime-mismatch``, ``key-mismatch``, ``not-loaded``,
    ``unsafe-cache-dir``, ``manifest``) so that a caller can branch on it.

    :param reason: that check's name, one of the above; kept as :attr:`reason` and in :meth:`to_json`.
    :param message: what the check found (sizes, checksums, versions...).
    :param where: the coordinates known where it is raised; callers further out add theirs with :meth:`OvcacheError.at`.
    :param hint: replaces the default hint (verify and warm again, or ``fallback='fresh'``); ``""`` keeps it.
    """

    def __init__(self, reason: str, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint
            or "run 'ovcache verify' on this host and warm the model again; or pass fallback='fresh' to compile without the cache",
            ErrorCode.INTEGRITY,
        )
        self.reason = reason

    def to_json(self) -> dict[str, Any]:
        """The envelope's ``error`` object (see docs/agent-json.md)."""
        return {**super().to_json(), "reason": self.reason}
