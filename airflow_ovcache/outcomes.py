"""Failure kinds and failure records: how a failed task says where and why, as plain data.

When an ovcache task fails, it leaves a *failure record* in XCom under
:data:`ERROR_XCOM_KEY` beside its traceback; the summary task of an example DAG
and the fleet report read it to say which host failed and why without anyone
opening a log. The record's *kind* sorts the failure for on-call: a host that
cannot be reached sends them to the network, an agent that ran and refused
sends them to the host's cache or settings.

This module is the one place the kinds, their labels and the record's shape are
defined. It imports neither Airflow nor the hook: the operators build records
with the kind the hook's ``failure_kind`` gives an exception, and the report
reads them in a task, on a laptop or in a test.
"""

from __future__ import annotations

from typing import Any, TypedDict

from .core.text import one_line

# The XCom key a failed task's record is pushed under.
ERROR_XCOM_KEY = "ovcache_error"

CANNOT_CONNECT = "cannot-connect"
LOGIN_REFUSED = "login-refused"
HOST_KEY = "host-key"
AGENT_MISSING = "agent-missing"
AGENT_ERROR = "agent-error"
AGENT_CRASHED = "agent-crashed"
CONFIG = "config"
CACHE = "cache"
# Anything else: the task failed for a reason none of the kinds above names.
TASK = "task"

# Each kind in the words the report and the run summaries use.
FAILURE_KINDS = {
    CANNOT_CONNECT: "cannot connect",
    LOGIN_REFUSED: "SSH login refused",
    HOST_KEY: "host key mismatch",
    AGENT_MISSING: "agent missing or too old",
    AGENT_ERROR: "agent ran and reported an error",
    AGENT_CRASHED: "agent crashed or timed out",
    CONFIG: "connection or argument problem",
    CACHE: "cache problems",
    TASK: "task failed",
}

# The kinds that mean the host was not reached at all (the report calls such a host unreachable).
NETWORK_KINDS = frozenset({CANNOT_CONNECT, LOGIN_REFUSED, HOST_KEY})


def kind_label(kind: str) -> str:
    """How a failure kind reads in a report or summary; an unknown kind (a newer writer) reads as itself.

    :param kind: one of :data:`FAILURE_KINDS`' keys, or any string a stored record carries.
    """
    return FAILURE_KINDS.get(kind, kind)


class FailureRecord(TypedDict):
    """The shape of a failure record in XCom (plain JSON, so any task or UI can read it).

    ``host``, ``model``, ``version`` and ``device`` are None where the error names no such
    coordinate; ``reason`` and ``hint`` are the message without those coordinates, so a
    summary line that already names the host does not repeat it.
    """

    task_id: str
    host: str | None
    model: str | None
    version: int | str | None
    device: str | None
    error: str
    kind: str
    message: str
    reason: str
    hint: str


def failure_record(task_id: str, exc: BaseException, kind: str) -> FailureRecord:
    """A failure as plain data: where (from the error's ``target``, if it has one) and why.

    :param task_id: the task (or the step of a ``@task``) that failed.
    :param exc: the exception it failed with.
    :param kind: the failure's kind, one of :data:`FAILURE_KINDS` (the hook's
        ``failure_kind(exc)`` for the provider's errors).
    """
    target = getattr(exc, "target", None)
    version = getattr(target, "version", None)
    return {
        "task_id": task_id,
        "host": getattr(target, "host", None),
        "model": getattr(target, "model", None),
        # A number where it is one, as everywhere else in XCom.
        "version": int(version) if isinstance(version, str) and version.isdigit() else version,
        "device": getattr(target, "device", None),
        "error": type(exc).__name__,
        "kind": kind,
        "message": one_line(str(exc)),
        "reason": one_line(getattr(exc, "reason", "") or str(exc)),
        "hint": one_line(getattr(exc, "hint", "") or ""),
    }


def record_kind(record: dict[str, Any] | None) -> str:
    """The kind of a stored failure record; :data:`TASK` when there is no record or it names none.

    :param record: a failure record as pulled from XCom, or None where the step left none.
    """
    return str((record or {}).get("kind") or TASK)


def record_reason(record: dict[str, Any]) -> str:
    """A failure record's reason and what to do, without the host/model prefix the summary line already has.

    :param record: a failure record as pulled from XCom (an older writer's may lack ``reason`` or ``hint``).
    """
    reason = record.get("reason") or record.get("message") or "failed"
    hint = record.get("hint")
    return f"{reason} ({hint})" if hint and hint not in reason else str(reason)
