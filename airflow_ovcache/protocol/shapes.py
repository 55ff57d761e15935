"""The result shapes: what the envelope and each command's ``result`` hold, as JSON Schema fragments.

One definition per shape, written with the words of :mod:`.codes`, so a status or
error code added there reaches the schema without a second edit.
``python -m airflow_ovcache.protocol.jsonschema`` writes ``cli/agent-schema.json``
from :func:`agent_schema`; a test checks the committed file matches.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from .codes import (
    SCHEMA,
    SCHEMA_VERSION,
    Command,
    EvidenceState,
    ExitCode,
    InstallStatus,
    PutStatus,
    ReleaseStep,
    RemovalReason,
    StepStatus,
    VerifyStatus,
    WarmStatus,
)

Shape = dict[str, Any]


def _enum(kind: type[Enum]) -> Shape:
    return {"enum": [member.value for member in kind]}


def _ref(name: str) -> Shape:
    return {"$ref": f"#/$defs/{name}"}


def _or_null(shape: Shape) -> Shape:
    return {"oneOf": [{"type": "null"}, shape]}


def _list(shape: Shape) -> Shape:
    return {"type": "array", "items": shape}


def _object(required: list[str], properties: Shape | None = None, **extra: Any) -> Shape:
    shape: Shape = {"type": "object", "required": required}
    if properties:
        shape["properties"] = properties
    shape.update(extra)
    return shape


STRING: Shape = {"type": "string"}
INTEGER: Shape = {"type": "integer"}
NUMBER: Shape = {"type": "number"}
BOOLEAN: Shape = {"type": "boolean"}
STRING_OR_NULL: Shape = {"type": ["string", "null"]}
INTEGER_OR_NULL: Shape = {"type": ["integer", "null"]}
NUMBER_OR_NULL: Shape = {"type": ["number", "null"]}
BOOLEAN_OR_NULL: Shape = {"type": ["boolean", "null"]}

# Commands whose result has a shape of its own (the others' results are small and free-form).
RESULT_SHAPES = (
    Command.WARM,
    Command.VERIFY,
    Command.REWARM,
    Command.INVALIDATE,
    Command.STATUS,
    Command.DEVICES,
    Command.MODELS,
    Command.VERSION,
    Command.RELEASE,
    Command.STORE_PUT,
    Command.INSTALL,
    Command.STORE_PRUNE,
)

ERROR = _object(
    ["code", "message", "hint", "host", "model", "version", "device"],
    {
        "code": STRING,
        "message": STRING,
        "hint": STRING,
        "host": STRING,
        "model": STRING_OR_NULL,
        "version": INTEGER_OR_NULL,
        "device": STRING_OR_NULL,
    },
)

WARM_ITEM = _object(
    [
        "model",
        "version",
        "device",
        "status",
        "reason",
        "spec_id",
        "blob",
        "size",
        "compile_seconds",
        "seconds",
        "loaded_from_cache",
        "load_ms",
        "error",
    ],
    {
        "model": STRING,
        "version": INTEGER_OR_NULL,
        "device": STRING,
        "status": _enum(WarmStatus),
        "reason": STRING,
        "spec_id": STRING_OR_NULL,
        "spec": STRING,
        "blob": STRING_OR_NULL,
        "size": INTEGER_OR_NULL,
        "compile_seconds": NUMBER_OR_NULL,
        "seconds": NUMBER,
        "loaded_from_cache": BOOLEAN_OR_NULL,
        "load_ms": NUMBER_OR_NULL,
        "error": _or_null(_ref("error")),
        "warnings": _list(STRING),
    },
)

WARM = _object(
    ["cache_dir", "repository", "items", "summary", "warnings"],
    {
        "items": _list(_ref("warm_item")),
        "summary": _object([status.value for status in WarmStatus], additionalProperties=INTEGER),
    },
)

VERIFY_ENTRY = _object(
    ["status", "reason", "model", "version", "device", "blob", "size", "loaded_from_cache", "load_ms", "outputs_match"],
    {
        "status": _enum(VerifyStatus),
        "reason": STRING,
        "model": STRING_OR_NULL,
        "version": INTEGER_OR_NULL,
        "device": STRING_OR_NULL,
        "blob": STRING_OR_NULL,
        "size": INTEGER_OR_NULL,
        "loaded_from_cache": BOOLEAN_OR_NULL,
        "load_ms": NUMBER_OR_NULL,
        "outputs_match": BOOLEAN_OR_NULL,
        "repairable": BOOLEAN,
        "evidence": _or_null(_ref("evidence")),
        "server_compiled": BOOLEAN_OR_NULL,
        "mtime": STRING_OR_NULL,
        "runtime": STRING_OR_NULL,
        "shadows": STRING_OR_NULL,
        "hint": STRING_OR_NULL,
    },
)

# The evidence object's keys and what each means (the docs' table is generated from this).
EVIDENCE_KEYS: dict[str, tuple[Shape, str]] = {
    "state": (
        _enum(EvidenceState),
        f"`{EvidenceState.SERVED}` (every blob of the entry was read by a process other than the agent since it was "
        f"published), `{EvidenceState.NOT_SERVED_YET}`, or `{EvidenceState.UNKNOWN}`",
    ),
    "reason": (
        STRING,
        "why: which blobs are unread, or why the host cannot tell (a `noatime` mount, a network or FUSE filesystem, "
        "the agent had to read without `O_NOATIME`)",
    ),
    "since": (STRING_OR_NULL, "when the entry was published (ISO 8601, UTC)"),
    "at": (STRING_OR_NULL, f"`{EvidenceState.SERVED}`: the latest recorded read"),
    "seconds": (NUMBER_OR_NULL, f"`{EvidenceState.NOT_SERVED_YET}`: seconds since publishing"),
}

EVIDENCE = _object(list(EVIDENCE_KEYS), {key: shape for key, (shape, _) in EVIDENCE_KEYS.items()})

ORPHAN = _object(
    ["blob", "size", "server_compiled", "mtime", "runtime"],
    {
        "blob": STRING,
        "size": INTEGER,
        "server_compiled": BOOLEAN,
        "mtime": STRING,
        "runtime": STRING_OR_NULL,
        "shadows": STRING_OR_NULL,
        "reason": STRING,
        "hint": STRING,
    },
)

WARNINGS = _list(STRING)

VERIFY = _object(
    ["cache_dir", "entries", "summary", "problems"],
    {
        "entries": _list(_ref("verify_entry")),
        "summary": {"type": "object", "additionalProperties": INTEGER},
        "problems": INTEGER,
        "warnings": _ref("warnings"),
    },
)

REWARM = _object(
    ["cache_dir", "found", "found_summary", "rewarmed", "after", "after_summary", "unrepaired"],
    {
        "found": _list(_ref("verify_entry")),
        "rewarmed": _list(_ref("warm_item")),
        "after": _list(_ref("verify_entry")),
        "unrepaired": _list(_ref("verify_entry")),
        "warnings": _ref("warnings"),
    },
)

REMOVAL = _object(
    ["reason", "detail", "blob", "size", "entries", "model", "version", "device", "delete_file"],
    {
        "reason": _enum(RemovalReason),
        "blob": STRING_OR_NULL,
        "size": INTEGER,
        "entries": _list(STRING),
        "delete_file": BOOLEAN,
    },
)

INVALIDATE = _object(
    ["cache_dir", "dry_run", "policy", "plan", "applied"],
    {
        "dry_run": BOOLEAN,
        "warnings": _ref("warnings"),
        "plan": _object(
            ["removals", "kept", "protected", "bytes_before", "bytes_after", "bytes_freed", "budget", "budget_met"],
            {"removals": _list(_ref("removal"))},
        ),
        "applied": _or_null(
            _object(
                ["removed", "skipped", "bytes_freed"],
                {"removed": _list(_ref("removal")), "bytes_freed": INTEGER},
            )
        ),
    },
)

STATUS = _object(
    ["cache_dir", "entries", "orphans", "total_bytes", "blob_count", "missing"],
    {
        "warnings": _ref("warnings"),
        "entries": _list(
            _object(
                ["model", "version", "device", "blob", "size", "present", "created", "verified", "evidence"],
                {"evidence": _ref("evidence")},
            )
        ),
        "orphans": _list(_ref("orphan")),
    },
)

# A device's hardware class: hosts whose devices have equal keys can share blobs (core.devices.hardware_class).
CLASS_KEY: Shape = {"type": "string", "pattern": "^[a-z0-9_]+-[0-9a-f]{16}$"}

DEVICES = _object(
    ["runtime", "devices"],
    {
        "devices": _list(
            _object(
                ["name", "full_name", "capabilities", "can_cache", "class_key", "class_parts"],
                {
                    "class_key": CLASS_KEY,
                    "class_parts": _object(["device", "runtime"], additionalProperties=STRING),
                },
            )
        )
    },
)

MODELS = _object(
    ["repository", "policy", "models", "problems"],
    {"models": _list(_object(["name", "versions", "selected", "latest"]))},
)

VERSION = _object(["agent_version", "schema", "schema_version", "openvino"])

# ``ovcache release``'s first step: the version folder is in the repository (after waiting up to --wait).
RELEASE_VERSION = _object(
    ["repository", "model", "version", "versions", "waited_seconds"],
    {
        "repository": STRING,
        "model": STRING,
        "version": INTEGER,
        "versions": _list(INTEGER),
        "waited_seconds": NUMBER,
    },
)

# Each step's own result is the shape of the command of the same name (the version step's is its own).
_STEP_RESULTS = {
    ReleaseStep.VERSION: "release_version",
    ReleaseStep.DEVICES: "devices",
    ReleaseStep.WARM: "warm",
    ReleaseStep.VERIFY: "verify",
    ReleaseStep.INVALIDATE: "invalidate",
}

RELEASE_STEP = _object(
    ["step", "status", "summary", "exit_code", "seconds", "result", "error"],
    {
        "step": _enum(ReleaseStep),
        "status": _enum(StepStatus),
        "summary": STRING,
        "exit_code": {"oneOf": [{"type": "null"}, _enum(ExitCode)]},
        "seconds": NUMBER,
        "result": {"type": ["object", "null"]},
        "error": _or_null(_ref("error")),
    },
    allOf=[
        {
            "if": {"properties": {"step": {"const": step.value}, "result": {"type": "object"}}},
            # The warm step of a release --from-store is an install (shape ``install``).
            "then": {
                "properties": {"result": {"anyOf": [_ref(name), _ref("install")]} if step == ReleaseStep.WARM else _ref(name)}
            },
        }
        for step, name in _STEP_RESULTS.items()
    ],
)

RELEASE = _object(
    ["cache_dir", "repository", "model", "version", "ok", "failed_step", "steps"],
    {
        "cache_dir": STRING,
        "repository": STRING,
        "model": STRING,
        "version": INTEGER,
        "ok": BOOLEAN,
        "failed_step": {"oneOf": [{"type": "null"}, _enum(ReleaseStep)]},
        "steps": {**_list(_ref("release_step")), "minItems": len(ReleaseStep), "maxItems": len(ReleaseStep)},
    },
)

STORE_PUT_ITEM = _object(
    ["model", "version", "device", "spec_id", "status", "reason", "class_key", "object", "size", "error"],
    {
        "model": STRING,
        "version": INTEGER,
        "device": STRING,
        "spec_id": STRING,
        "status": _enum(PutStatus),
        "reason": STRING,
        "class_key": STRING_OR_NULL,
        "object": STRING_OR_NULL,
        "size": INTEGER_OR_NULL,
        "error": _or_null(_ref("error")),
    },
)

STORE_PUT = _object(
    ["cache_dir", "store", "items", "summary", "warnings"],
    {
        "store": STRING,
        "items": _list(_ref("store_put_item")),
        "summary": _object([status.value for status in PutStatus], additionalProperties=INTEGER),
        "warnings": _ref("warnings"),
    },
)

INSTALL_ITEM = _object(
    [
        "model",
        "version",
        "device",
        "status",
        "reason",
        "class_key",
        "spec_id",
        "object",
        "blob",
        "size",
        "fallback",
        "seconds",
        "loaded_from_cache",
        "error",
    ],
    {
        "model": STRING,
        "version": INTEGER_OR_NULL,
        "device": STRING,
        "status": _enum(InstallStatus),
        "reason": STRING,
        "class_key": STRING_OR_NULL,
        "spec_id": STRING_OR_NULL,
        "object": STRING_OR_NULL,
        "blob": STRING_OR_NULL,
        "blobs": _or_null(_list(STRING)),
        "size": INTEGER_OR_NULL,
        "fallback": STRING_OR_NULL,
        "compile_seconds": NUMBER_OR_NULL,
        "seconds": NUMBER,
        "loaded_from_cache": BOOLEAN_OR_NULL,
        "load_ms": NUMBER_OR_NULL,
        "error": _or_null(_ref("error")),
        "warnings": _list(STRING),
    },
)

INSTALL = _object(
    ["cache_dir", "repository", "store", "items", "summary", "warnings"],
    {
        "store": STRING,
        "items": _list(_ref("install_item")),
        "summary": _object([status.value for status in InstallStatus], additionalProperties=INTEGER),
        "warnings": _ref("warnings"),
    },
)

STORED_SET = _object(
    ["model", "version", "spec_id", "class_key", "object", "size", "created"],
    {
        "model": STRING,
        "version": INTEGER,
        "spec_id": STRING,
        "class_key": STRING,
        "object": STRING,
        "size": INTEGER,
        "created": STRING,
    },
)

STORE_PRUNE = _object(
    ["store", "keep", "dry_run", "removed", "kept"],
    {
        "store": STRING,
        "keep": STRING,
        "dry_run": BOOLEAN,
        "removed": _list(_ref("stored_set")),
        "kept": _list(_ref("stored_set")),
    },
)

DEFS: dict[str, Shape] = {
    "error": ERROR,
    "warm_item": WARM_ITEM,
    "warm": WARM,
    "verify_entry": VERIFY_ENTRY,
    "evidence": EVIDENCE,
    "orphan": ORPHAN,
    "warnings": WARNINGS,
    "verify": VERIFY,
    "rewarm": REWARM,
    "removal": REMOVAL,
    "invalidate": INVALIDATE,
    "status": STATUS,
    "devices": DEVICES,
    "models": MODELS,
    "version": VERSION,
    "release_version": RELEASE_VERSION,
    "release_step": RELEASE_STEP,
    "release": RELEASE,
    "store_put_item": STORE_PUT_ITEM,
    "store-put": STORE_PUT,
    "install_item": INSTALL_ITEM,
    "install": INSTALL,
    "stored_set": STORED_SET,
    "store-prune": STORE_PRUNE,
}

ENVELOPE_KEYS = [
    "schema",
    "schema_version",
    "agent_version",
    "command",
    "host",
    "ok",
    "exit_code",
    "started",
    "seconds",
    "result",
    "error",
]


def agent_schema() -> Shape:
    """The whole envelope as a JSON Schema (2020-12): the document ``cli/agent-schema.json`` holds."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://airflow-ovcache.invalid/schema/agent-v{SCHEMA_VERSION}.json",
        "title": f"ovcache --json envelope, schema_version {SCHEMA_VERSION}",
        "type": "object",
        "required": ENVELOPE_KEYS,
        "properties": {
            "schema": {"const": SCHEMA},
            "schema_version": {"const": SCHEMA_VERSION},
            "agent_version": STRING,
            "command": _enum(Command),
            "host": STRING,
            "ok": BOOLEAN,
            "exit_code": _enum(ExitCode),
            "started": STRING,
            "seconds": {"type": "number", "minimum": 0},
            "error": _or_null(_ref("error")),
            "result": {"type": "object"},
        },
        "allOf": [
            {
                "if": {"properties": {"command": {"const": command.value}, "error": {"type": "null"}}},
                "then": {"properties": {"result": _ref(command.value)}},
            }
            for command in RESULT_SHAPES
        ],
        "$defs": DEFS,
    }
