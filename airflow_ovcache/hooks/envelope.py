"""Reading the agent's JSON envelope: checked before any command's result is looked at.

The envelope is the one contract between the Airflow side and a host (its
words are :mod:`airflow_ovcache.protocol`'s): its ``schema`` and
``schema_version`` are checked before anything else is read, and output that is
not an envelope is explained (an agent too old, a usage error, a crash). The
per-command reports built on a parsed run are in :mod:`.reports`.

Schema 2 adds evidence from the server's side; schema 1 envelopes (agents from
before it) still parse, with the evidence fields left ``None``. Two kinds of
proof must not be confused when reading these results: ``loaded_from_cache`` and
``load_ms`` come from a compile *following the entry's profile* in a fresh
process (it proves the profile's call hits the blob), while ``evidence_state``
(``served`` / ``not-served-yet`` / ``unknown``) is what the cache directory shows
about the real server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from ..core import trace
from ..protocol import SCHEMA, SUPPORTED_SCHEMA_VERSIONS, ErrorCode
from ..protocol.location import Location
from .errors import AgentOutputError, AgentTooOld

_ENVELOPE_START = re.compile(r'\{\s*"schema"\s*:')


def opt_int(value: Any) -> int | None:
    """An optional integer field of the agent's JSON.

    :param value: the field's value, or None.
    """
    return None if value is None else int(value)


# How a row field of the agent's JSON becomes a report field, by the field's annotation
# (the reports use ``from __future__ import annotations``, so annotations are strings).
# A missing or empty value takes the field's default; a field without a default must be there.
_READ_AS: dict[str, Callable[[Any], Any]] = {
    "str": str,
    "int": int,
    "bool": bool,
    "int | None": opt_int,
    "tuple[str, ...]": lambda value: tuple(str(item) for item in value),
    "tuple[int, ...]": lambda value: tuple(int(item) for item in value),
}

_T = TypeVar("_T")


def read_row(cls: type[_T], data: dict[str, Any], **given: Any) -> _T:
    """A report dataclass from one object of the agent's JSON, each field read under its own name.

    One reader for every row shape keeps the hook's reports from restating the
    protocol field by field: a field the agent adds to a shape reaches a report by
    adding it to the dataclass. ``str``, ``int``, ``bool``, ``int | None`` and tuple
    fields are converted; other fields (``str | None``, ``float | None``...) are
    taken as they are.

    :param cls: the report dataclass.
    :param data: the object as parsed from JSON.
    :param given: fields the caller reads itself (nested objects, fallbacks for older agents).
    :raises KeyError: a field without a default is missing from ``data``.
    """
    values: dict[str, Any] = {}
    for spec in fields(cls):  # type: ignore[arg-type]  # any report dataclass; a bound TypeVar would need typeshed internals
        if spec.name in given:
            values[spec.name] = given[spec.name]
            continue
        raw = data.get(spec.name)
        has_default = spec.default is not MISSING or spec.default_factory is not MISSING
        if raw is None or raw == "":
            if has_default:
                continue
            if spec.name not in data:
                raise KeyError(spec.name)
        read = _READ_AS.get(str(spec.type))
        values[spec.name] = read(raw) if read is not None and raw is not None else raw
    return cls(**values)


@dataclass(frozen=True)
class AgentFailure:
    """The ``error`` object of an envelope.

    :param code: the stable error code (:class:`~airflow_ovcache.protocol.ErrorCode`).
    :param message: what went wrong, for people.
    :param hint: what to do about it.
    :param host: the host it concerns.
    :param model: the model it concerns, if known.
    :param version: the version it concerns, if known.
    :param device: the device it concerns, if known.
    """

    code: str = ErrorCode.ERROR
    message: str = ""
    hint: str = ""
    host: str | None = None
    model: str | None = None
    version: int | None = None
    device: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AgentFailure:
        """Read an envelope's ``error`` object.

        :param data: the object as parsed from JSON.
        """
        return read_row(cls, data)


@dataclass
class AgentRun:
    """One parsed envelope plus what the transport saw.

    :param command: the command the agent ran.
    :param host: the host it ran on (the envelope's, else the target's).
    :param ok: the agent's word on success (exit code 0).
    :param exit_code: the agent's exit code (:class:`~airflow_ovcache.protocol.ExitCode`).
    :param agent_version: the agent's package version.
    :param schema_version: the envelope's schema version.
    :param seconds: how long the command took on the host.
    :param result: the command's result (shapes in :mod:`airflow_ovcache.protocol.shapes`).
    :param error: the envelope's error, if the command could not do its job.
    :param stderr_tail: the last lines the agent printed on stderr.
    """

    command: str
    host: str
    ok: bool
    exit_code: int
    agent_version: str
    schema_version: int
    seconds: float
    result: dict[str, Any]
    error: AgentFailure | None = None
    stderr_tail: list[str] = field(default_factory=list)

    @classmethod
    @trace.traced("agent.parse")
    def parse(cls, stdout: str, exit_code: int, target: Location, stderr_tail: list[str] | None = None) -> AgentRun:
        """Read an envelope, or explain why this is not one this provider can read.

        :param stdout: what the agent printed on stdout (a login banner before the envelope is skipped).
        :param exit_code: the agent process's exit code.
        :param target: the host and command, for error messages.
        :param stderr_tail: the last lines of the agent's stderr.
        :raises AgentTooOld: the output is another schema, or an agent that does not know the command.
        :raises AgentUsageError: an old agent refused a value with a usage error.
        :raises AgentOutputError: there is no envelope at all.
        """
        tail = stderr_tail or []
        data = _load_envelope(stdout)
        if data is None:
            last = " | ".join(tail[-3:]) or "no output"
            if exit_code == 2 and any("usage:" in line for line in tail):
                # An agent from before usage errors came as envelopes. Only an unknown command
                # or option means it is older than the provider; a refused value is the caller's mistake.
                if any("unrecognized arguments" in line or "argument COMMAND: invalid choice" in line for line in tail):
                    raise AgentTooOld(
                        target,
                        f"the agent does not understand this command (it printed a usage error: {last}); it is probably older than this provider",
                    )
                from .errors import AgentUsageError

                said = next((line for line in reversed(tail) if "error:" in line), last)
                raise AgentUsageError(target, AgentFailure(ErrorCode.USAGE, said.split("error:", 1)[-1].strip()))
            raise AgentOutputError(
                target,
                f"the agent exited with code {exit_code} without a JSON envelope on stdout (last lines: {last})",
                "run the same 'ovcache ... --json' command on the host to see what it prints",
            )
        if data.get("schema") != SCHEMA:
            raise AgentTooOld(target, f"the agent printed JSON of schema {data.get('schema')!r}, expected {SCHEMA!r}")
        version = data.get("schema_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
            newer = isinstance(version, int) and version > max(SUPPORTED_SCHEMA_VERSIONS)
            raise AgentTooOld(
                target,
                f"the agent (version {data.get('agent_version', '?')}) speaks envelope schema {version}, this provider reads {supported}",
                "upgrade the provider on the Airflow workers to match the agent" if newer else None,
            )
        error = data.get("error")
        return cls(
            command=str(data.get("command", "")),
            host=str(data.get("host") or target.host),
            ok=bool(data.get("ok")),
            exit_code=int(data.get("exit_code", exit_code)),
            agent_version=str(data.get("agent_version", "")),
            schema_version=int(version),
            seconds=float(data.get("seconds") or 0.0),
            result=data.get("result") or {},
            error=AgentFailure.from_json(error) if isinstance(error, dict) else None,
            stderr_tail=tail,
        )


def _load_envelope(stdout: str) -> dict[str, Any] | None:
    """The JSON object on stdout, or None when there is none."""
    text = stdout.strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        # A login shell may print a banner before the command's output: start at the envelope.
        match = _ENVELOPE_START.search(text)
        if match is None:
            return None
        try:
            data = json.loads(text[match.start() :])
        except ValueError:
            return None
    return data if isinstance(data, dict) else None
