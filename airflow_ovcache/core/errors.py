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
from .text import one_line, printable


def this_host() -> str:
    """Name this host the way errors and results report it.

    ``OVCACHE_HOST`` wins so that a fleet inventory name (``infer-03``) can be used
    instead of whatever the machine calls itself (a container id, say).
    """
    import os
    import socket  # here, not at the top: the serving helper imports this module on every server start

    return os.environ.get("OVCACHE_HOST") or socket.gethostname()


@dataclass
class Where:
    """The coordinates of a failure: which host, model, version and device."""

    host: str | None = None
    model: str | None = None
    version: int | None = None
    device: str | None = None

    def merged(self, other: Where | None) -> Where:
        if other is None:
            return self
        return Where(
            host=self.host or other.host,
            model=self.model or other.model,
            version=self.version if self.version is not None else other.version,
            device=self.device or other.device,
        )

    def label(self) -> str:
        # Names come from input (a folder, a flag, a manifest): escaped, so one error stays one line.
        parts = [f"host {printable(self.host or this_host())}"]
        if self.model:
            parts.append(f"model {printable(self.model)}")
        if self.version is not None:
            parts.append(f"version {printable(self.version)}")
        if self.device:
            parts.append(f"device {printable(self.device)}")
        return ", ".join(parts)


@dataclass(eq=False)
class OvcacheError(Exception):
    """Base class: a failure with its coordinates and a hint.

    ``code`` is stable and machine readable (the JSON output and the Airflow side
    branch on it); the message and hint are for people.
    """

    message: str
    where: Where = field(default_factory=Where)
    hint: str = ""
    code: str = ErrorCode.ERROR

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def at(self, where: Where) -> OvcacheError:
        """Fill in coordinates that were not known where the error was raised."""
        self.where = self.where.merged(where)
        return self

    def one_line(self) -> str:
        text = f"{self.where.label()}: {_flatten(self.message)}"
        if self.hint:
            text += f" ({_flatten(self.hint)})"
        return text

    def __str__(self) -> str:
        return self.one_line()

    def to_json(self) -> dict[str, Any]:
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
    def __init__(self, message: str, hint: str = "", where: Where | None = None) -> None:
        super().__init__(message, where or Where(), hint, ErrorCode.USAGE)


class InvalidName(OvcacheError):
    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(
            message,
            where or Where(),
            "model names and versions are single path components; versions are positive integers",
            ErrorCode.INVALID_NAME,
        )


class ModelNotFound(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
            hint or "check the repository path and the <model>/<version>/ layout",
            ErrorCode.MODEL_NOT_FOUND,
        )


class ModelUnreadable(OvcacheError):
    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(
            message,
            where or Where(),
            "OpenVINO cannot read or convert this model; check the files were copied whole",
            ErrorCode.MODEL_UNREADABLE,
        )


class UnknownDevice(OvcacheError):
    def __init__(self, device: str, available: list[str], where: Where | None = None) -> None:
        super().__init__(
            f"device {device!r} is not present on this host",
            (where or Where()).merged(Where(device=device)),
            f"available devices: {', '.join(available) or 'none'}",
            ErrorCode.UNKNOWN_DEVICE,
        )


class UnknownProperty(OvcacheError):
    def __init__(self, prop: str, device: str, where: Where | None = None) -> None:
        super().__init__(
            f"property {prop!r} is not supported by device {device}",
            (where or Where()).merged(Where(device=device)),
            f"list supported properties with 'ovcache devices --json'; fix the cache spec for {device}",
            ErrorCode.UNKNOWN_PROPERTY,
        )


class DeviceCannotCache(OvcacheError):
    def __init__(self, device: str, where: Where | None = None) -> None:
        super().__init__(
            f"device {device} does not report EXPORT_IMPORT, so OpenVINO cannot cache compiled models for it",
            (where or Where()).merged(Where(device=device)),
            "warm another device or pass --no-cache-device=skip to skip it",
            ErrorCode.DEVICE_CANNOT_CACHE,
        )


class NoBlobWritten(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
            hint or "check that the device can cache and that the cache spec is what the server compiles",
            ErrorCode.NO_BLOB,
        )


class CompileFailed(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(message, where or Where(), hint, ErrorCode.COMPILE_FAILED)


class CacheDirError(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(message, where or Where(), hint, ErrorCode.CACHE_DIR)


class DiskFull(OvcacheError):
    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(
            message,
            where or Where(),
            "nothing was replaced; free space on the cache filesystem: 'ovcache invalidate' still works on a full disk "
            "(it keeps a small reserve for its journal), or 'ovcache invalidate --dry-run' lists blobs that can be deleted by hand",
            ErrorCode.DISK_FULL,
        )


class ManifestCorrupt(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
            hint or "run 'ovcache repair-manifest' to set it aside and rebuild it; no blob was touched",
            ErrorCode.MANIFEST_CORRUPT,
        )


class LockTimeout(OvcacheError):
    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(
            message,
            where or Where(),
            "another ovcache process holds the lock; wait for it or raise --lock-timeout",
            ErrorCode.LOCK_TIMEOUT,
        )


class SpecConflict(OvcacheError):
    def __init__(self, message: str, where: Where | None = None) -> None:
        super().__init__(
            message,
            where or Where(),
            "two cache specs map to one blob file but produce different blobs; serve one spec per model per cache directory",
            ErrorCode.SPEC_CONFLICT,
        )


class EncryptionError(OvcacheError):
    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(message, where or Where(), hint, ErrorCode.ENCRYPTION)


class KeyMismatch(OvcacheError):
    """The blob was written under another encryption key than the one at hand."""

    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
            hint or "give the agent and the serving application the same key; after rotating a key, warm again",
            ErrorCode.KEY_MISMATCH,
        )


class UnsafeCacheDir(OvcacheError):
    """A cache directory other users can write: whoever writes it decides what the server runs."""

    def __init__(self, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
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

    def __init__(self, reason: str, message: str, where: Where | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Where(),
            hint
            or "run 'ovcache verify' on this host and warm the model again; or pass fallback='fresh' to compile without the cache",
            ErrorCode.INTEGRITY,
        )
        self.reason = reason

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "reason": self.reason}
