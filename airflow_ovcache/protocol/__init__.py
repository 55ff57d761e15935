"""The agent's JSON contract, in one place: what ``ovcache --json`` prints and the Airflow hook reads.

Standard library only and nothing heavy at import time: the core, the CLI and
the hook all import it. :mod:`.codes` holds the words (schema id and versions,
exit codes, statuses, error codes), :mod:`.shapes` the result shapes as JSON
Schema, :mod:`.location` the one location type (host, model, version, device) that every error and result names; :mod:`.jsonschema` and :mod:`.docs` write ``cli/agent-schema.json`` and
the tables of ``docs/agent-json.md`` from them.
"""

from .codes import (
    LOAD_STATUSES,
    REPAIRABLE_STATUSES,
    SCHEMA,
    SCHEMA_VERSION,
    SUPPORTED_SCHEMA_VERSIONS,
    Command,
    ErrorCode,
    EvidenceState,
    ExitCode,
    ReleaseStep,
    RemovalReason,
    StepStatus,
    Text,
    VerifyStatus,
    WarmStatus,
)
from .location import Location

__all__ = [
    "LOAD_STATUSES",
    "REPAIRABLE_STATUSES",
    "SCHEMA",
    "SCHEMA_VERSION",
    "SUPPORTED_SCHEMA_VERSIONS",
    "Command",
    "ErrorCode",
    "EvidenceState",
    "ExitCode",
    "Location",
    "ReleaseStep",
    "RemovalReason",
    "StepStatus",
    "Text",
    "VerifyStatus",
    "WarmStatus",
]
