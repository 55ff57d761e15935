"""The words of the agent's JSON contract: schema id and versions, exit codes, statuses and error codes.

Both ends read them from here: the agent writes them, the Airflow hook branches
on them. Standard library only, so the core, the CLI and the hook can all
import it without pulling anything else in.
"""

from __future__ import annotations

from enum import Enum, IntEnum

SCHEMA = "airflow-ovcache/agent"
SCHEMA_VERSION = 2
# What this provider reads: schema 1 agents (before evidence) still parse, with evidence left None.
SUPPORTED_SCHEMA_VERSIONS = (1, 2)


class Text(str, Enum):
    """A protocol word: compares, formats and serialises as its plain string value.

    ``str`` mixed into ``Enum`` alone would format as ``Class.MEMBER`` in f-strings
    on newer Pythons; the contract's words must read the same everywhere. The
    hash is the string's, so a member finds a plain string in a set or dict key.
    """

    __hash__ = str.__hash__

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class ExitCode(IntEnum):
    """What every ``ovcache`` command exits with (and puts in the envelope's ``exit_code``)."""

    OK = 0
    # The command ran and found or left problems (verify found stale blobs, ...).
    PROBLEMS = 1
    # The command could not do its job (bad input, unusable cache directory, a failed warm).
    ERROR = 2


class Command(Text):
    """The envelope's ``command``: a subcommand, or ``ovcache`` when none was recognised."""

    OVCACHE = "ovcache"
    WARM = "warm"
    REWARM = "rewarm"
    VERIFY = "verify"
    INVALIDATE = "invalidate"
    STATUS = "status"
    DEVICES = "devices"
    MODELS = "models"
    RELEASE = "release"
    STORE_PUT = "store-put"
    INSTALL = "install"
    STORE_PRUNE = "store-prune"
    REPAIR_MANIFEST = "repair-manifest"
    SAMPLE_REPOSITORY = "sample-repository"
    VERSION = "version"


class WarmStatus(Text):
    """What a warm did with one (model, version, device) item."""

    WARMED = "warmed"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"


class InstallStatus(Text):
    """What an install did with one (model, version, device) item."""

    # The store's set was published and a fresh-process compile loaded it from cache.
    INSTALLED = "installed"
    # A check failed (the item's ``fallback`` says which): compiled locally, as a warm does.
    WARMED = "warmed"
    UNCHANGED = "unchanged"
    FAILED = "failed"


class PutStatus(Text):
    """What ``store-put`` did with one manifest entry."""

    STORED = "stored"
    FAILED = "failed"


class VerifyStatus(Text):
    """One status per verified entry (or orphan blob); checks stop at the first failure."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"
    UNREADABLE = "unreadable"
    RUNTIME_MISMATCH = "runtime-mismatch"
    ISA_MISMATCH = "isa-mismatch"
    MODEL_MISSING = "model-missing"
    STALE_MODEL = "stale-model"
    KEY_MISMATCH = "key-mismatch"
    KEY_UNAVAILABLE = "key-unavailable"
    DEVICE_MISSING = "device-missing"
    CANNOT_CACHE = "cannot-cache"
    NOT_CACHED = "not-cached"
    LOAD_FAILED = "load-failed"
    OUTPUT_MISMATCH = "output-mismatch"
    ORPHAN = "orphan"


# Statuses a warm repairs (it rebuilds the blob); the rest need a person. An agent also says so per
# entry (``repairable``); a reader falls back on this set for agents from before that key.
REPAIRABLE_STATUSES = frozenset(
    {
        VerifyStatus.MISSING,
        VerifyStatus.CORRUPT,
        VerifyStatus.RUNTIME_MISMATCH,
        VerifyStatus.ISA_MISMATCH,
        VerifyStatus.STALE_MODEL,
        VerifyStatus.KEY_MISMATCH,
        VerifyStatus.NOT_CACHED,
    }
)
# What only a load check finds; a re-check without one cannot confirm or clear it.
LOAD_STATUSES = frozenset({VerifyStatus.NOT_CACHED, VerifyStatus.LOAD_FAILED, VerifyStatus.OUTPUT_MISMATCH})


class ReleaseStep(Text):
    """The steps of ``ovcache release``, in the order it runs them on one host."""

    VERSION = "version"
    DEVICES = "devices"
    WARM = "warm"
    VERIFY = "verify"
    INVALIDATE = "invalidate"


class StepStatus(Text):
    """What became of one step of ``ovcache release``: the release stops at the first failed one."""

    OK = "ok"
    FAILED = "failed"
    NOT_RUN = "not-run"


class EvidenceState(Text):
    """What the cache directory shows about the real server reading an entry's blobs."""

    SERVED = "served"
    NOT_SERVED_YET = "not-served-yet"
    UNKNOWN = "unknown"


class RemovalReason(Text):
    """Why an invalidation plan removes a blob."""

    RETIRED = "retired"
    STALE = "stale"
    FOREIGN = "foreign"
    ORPHAN = "orphan"
    BUDGET = "budget"
    MISSING = "missing"


class ErrorCode(Text):
    """The envelope error's stable ``code``: the Airflow side branches on it, people read the message."""

    ERROR = "error"
    USAGE = "usage"
    # What an agent older than the provider answers: it does not know what it was asked for.
    UNKNOWN_COMMAND = "unknown-command"
    UNKNOWN_OPTION = "unknown-option"
    INVALID_NAME = "invalid-name"
    MODEL_NOT_FOUND = "model-not-found"
    MODEL_UNREADABLE = "model-unreadable"
    UNKNOWN_DEVICE = "unknown-device"
    UNKNOWN_PROPERTY = "unknown-property"
    DEVICE_CANNOT_CACHE = "device-cannot-cache"
    NO_BLOB = "no-blob"
    COMPILE_FAILED = "compile-failed"
    CACHE_DIR = "cache-dir"
    DISK_FULL = "disk-full"
    MANIFEST_CORRUPT = "manifest-corrupt"
    LOCK_TIMEOUT = "lock-timeout"
    SPEC_CONFLICT = "spec-conflict"
    ENCRYPTION = "encryption"
    KEY_MISMATCH = "key-mismatch"
    UNSAFE_CACHE_DIR = "unsafe-cache-dir"
    INTEGRITY = "integrity"
    STORE = "store"
