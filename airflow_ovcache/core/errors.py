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
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from ")]
    return useful[-1] if useful else (lines[-1] if lines else type(exc).__name__)


class UsageError(OvcacheError):
    """A command-line argument the agent cannot take (exit code 2); the message names the flag."""

    def __init__(self, message: str, hint: str = "", where: Location | None = None) -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.USAGE)


class InvalidName(OvcacheError):
    """A model or version name from input that is not a safe single path component."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "model names and versions are single path components; versions are positive integers",
            ErrorCode.INVALID_NAME,
        )


class ModelNotFound(OvcacheError):
    """The model, version or model file asked for is not in the repository."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check the repository path and the <model>/<version>/ layout",
            ErrorCode.MODEL_NOT_FOUND,
        )


class ModelUnreadable(OvcacheError):
    """A model file exists but OpenVINO (or the file system) cannot read it."""

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
    """A compile ran but left no new blob in the cache directory."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check that the device can cache and that the cache spec is what the server compiles",
            ErrorCode.NO_BLOB,
        )


class CompileFailed(OvcacheError):
    """OpenVINO failed to compile the model for the device."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.COMPILE_FAILED)


class CacheDirError(OvcacheError):
    """The cache directory cannot be used (not a directory, not writable...)."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.CACHE_DIR)


class DiskFull(OvcacheError):
    """The cache directory's file system is full."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "nothing was replaced; free space on the cache filesystem: 'ovcache invalidate' still works on a full disk "
            "(it keeps a small reserve for its journal), or 'ovcache invalidate --dry-run' lists blobs that can be deleted by hand",
            ErrorCode.DISK_FULL,
        )


class ManifestCorrupt(OvcacheError):
    """The cache's manifest cannot be read or is not one this agent wrote."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "run 'ovcache repair-manifest' to set it aside and rebuild it; no blob was touched",
            ErrorCode.MANIFEST_CORRUPT,
        )


class LockTimeout(OvcacheError):
    """Another agent holds the cache directory's lock past the time allowed."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "another ovcache process holds the lock; wait for it or raise --lock-timeout",
            ErrorCode.LOCK_TIMEOUT,
        )


class SpecConflict(OvcacheError):
    """Two sources of cache specs (flags, serving config) disagree about one model."""

    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "two cache specs map to one blob file but produce different blobs; serve one spec per model per cache directory",
            ErrorCode.SPEC_CONFLICT,
        )


class EncryptionError(OvcacheError):
    """The cache encryption key is missing, unreadable or not a key."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, ErrorCode.ENCRYPTION)


class KeyMismatch(OvcacheError):
    """The blob was written under another encryption key than the one at hand."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "give the agent and the serving application the same key; after rotating a key, warm again",
            ErrorCode.KEY_MISMATCH,
        )


class UnsafeCacheDir(OvcacheError):
    """A cache directory other users can write: whoever writes it decides what the server runs."""

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
