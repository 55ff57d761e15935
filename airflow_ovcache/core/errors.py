"""Errors a user can act on.

Every failure the agent reports is an :class:`OvcacheError` subclass carrying the
host, model, version and device it concerns and a hint saying what to do. The
message is rendered on one line because it ends up in a task log or a terminal
at 3 am, and the first line is often all that is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..protocol.location import Location, this_host
from .text import one_line


@dataclass(eq=False)
class OvcacheError(Exception):
    """Base class: a failure with its coordinates and a hint.

    ``code`` is stable and machine readable (the JSON output and the Airflow side
    branch on it); the message and hint are for people.
    """

    message: str
    where: Location = field(default_factory=Location)
    hint: str = ""
    code: str = "error"

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def at(self, where: Location) -> OvcacheError:
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
    def __init__(self, message: str, hint: str = "", where: Location | None = None) -> None:
        super().__init__(message, where or Location(), hint, "usage")


class InvalidName(OvcacheError):
    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "model names and versions are single path components; versions are positive integers",
            "invalid-name",
        )


class ModelNotFound(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check the repository path and the <model>/<version>/ layout",
            "model-not-found",
        )


class ModelUnreadable(OvcacheError):
    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "OpenVINO cannot read or convert this model; check the files were copied whole",
            "model-unreadable",
        )


class UnknownDevice(OvcacheError):
    def __init__(self, device: str, available: list[str], where: Location | None = None) -> None:
        super().__init__(
            f"device {device!r} is not present on this host",
            (where or Location()).merged(Location(device=device)),
            f"available devices: {', '.join(available) or 'none'}",
            "unknown-device",
        )


class UnknownProperty(OvcacheError):
    def __init__(self, prop: str, device: str, where: Location | None = None) -> None:
        super().__init__(
            f"property {prop!r} is not supported by device {device}",
            (where or Location()).merged(Location(device=device)),
            f"list supported properties with 'ovcache devices --json'; fix the cache spec for {device}",
            "unknown-property",
        )


class DeviceCannotCache(OvcacheError):
    def __init__(self, device: str, where: Location | None = None) -> None:
        super().__init__(
            f"device {device} does not report EXPORT_IMPORT, so OpenVINO cannot cache compiled models for it",
            (where or Location()).merged(Location(device=device)),
            "warm another device or pass --no-cache-device=skip to skip it",
            "device-cannot-cache",
        )


class NoBlobWritten(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "check that the device can cache and that the cache spec is what the server compiles",
            "no-blob",
        )


class CompileFailed(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, "compile-failed")


class CacheDirError(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, "cache-dir")


class DiskFull(OvcacheError):
    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "nothing was replaced; free space on the cache filesystem: 'ovcache invalidate' still works on a full disk "
            "(it keeps a small reserve for its journal), or 'ovcache invalidate --dry-run' lists blobs that can be deleted by hand",
            "disk-full",
        )


class ManifestCorrupt(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "run 'ovcache repair-manifest' to set it aside and rebuild it; no blob was touched",
            "manifest-corrupt",
        )


class LockTimeout(OvcacheError):
    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "another ovcache process holds the lock; wait for it or raise --lock-timeout",
            "lock-timeout",
        )


class SpecConflict(OvcacheError):
    def __init__(self, message: str, where: Location | None = None) -> None:
        super().__init__(
            message,
            where or Location(),
            "two cache specs map to one blob file but produce different blobs; serve one spec per model per cache directory",
            "spec-conflict",
        )


class EncryptionError(OvcacheError):
    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(message, where or Location(), hint, "encryption")


class KeyMismatch(OvcacheError):
    """The blob was written under another encryption key than the one at hand."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint or "give the agent and the serving application the same key; after rotating a key, warm again",
            "key-mismatch",
        )


class UnsafeCacheDir(OvcacheError):
    """A cache directory other users can write: whoever writes it decides what the server runs."""

    def __init__(self, message: str, where: Location | None = None, hint: str = "") -> None:
        super().__init__(
            message,
            where or Location(),
            hint
            or "make it owned by the agent's user and not writable by others (chmod o-w,g-w); see docs/security.md, or pass --unsafe-cache-dir warn",
            "unsafe-cache-dir",
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
            "integrity",
        )
        self.reason = reason

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "reason": self.reason}
