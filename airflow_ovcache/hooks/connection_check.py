"""What the connection form's Test button checks: each thing a task will need, in the order it needs it.

Kept out of the hook so each check is one small function over the hook's
public commands; the hook's ``test_connection`` only calls :func:`check_connection`.
A failure is one line that starts with the connection field to fix, because the
person reading it is looking at the connection form, not at a command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    AgentCommandError,
    AgentCrashed,
    AgentNotInstalled,
    AgentOutputError,
    AgentTimeout,
    AgentTooOld,
    ConnectionConfigError,
    OvcacheHookError,
)

if TYPE_CHECKING:
    from .ovcache import OvcacheHook

# Seconds each check may take: long enough for an SSH connect with retries and OpenVINO's
# device query, short enough that the form answers.
CHECK_TIMEOUT = 120.0


class CheckFailed(Exception):
    """One check failed; ``str()`` is the line the form shows."""


def _field_for(exc: Exception) -> str:
    """The connection field a failure to reach or run the agent points at."""
    name = type(exc).__name__
    if name in ("SSHConnectError", "SSHLoginRefused", "HostKeyMismatch", "HostKeyNotPinned"):
        return "ssh_conn_id"
    if isinstance(exc, AgentNotInstalled | AgentTooOld | AgentCrashed | AgentOutputError):
        return "agent_command"
    if isinstance(exc, AgentTimeout):
        return "command_timeout"
    return "transport"


def _fail(field: str, conn_id: str, message: object) -> CheckFailed:
    return CheckFailed(f"{field} (connection {conn_id}): {message}")


def _agent(hook: OvcacheHook) -> str:
    try:
        info = hook.agent_version(timeout=CHECK_TIMEOUT)
    except ConnectionConfigError as exc:
        raise CheckFailed(str(exc)) from exc
    except OvcacheHookError as exc:
        raise _fail(_field_for(exc), hook.ovcache_conn_id, exc) from exc
    return (
        f"host {info.host}: agent {info.agent_version} (schema {info.schema_version}), "
        f"OpenVINO {info.openvino}, via {hook.config.transport}"
    )


def _cache_dir(hook: OvcacheHook) -> str:
    cache_dir = hook.config.cache_dir
    if not cache_dir:
        return "cache_dir not set (warm, verify, rewarm and invalidate need it)"
    try:
        status = hook.status(timeout=CHECK_TIMEOUT)
    except AgentCommandError as exc:
        if exc.code == "cache-dir" and "does not exist" in exc.failure.message:
            return f"cache_dir {cache_dir} does not exist yet (the first warm creates it)"
        raise _fail(
            "cache_dir", hook.ovcache_conn_id, f"{cache_dir} is not a usable cache directory: {exc.failure.message}"
        ) from exc
    except OvcacheHookError as exc:
        raise _fail("cache_dir", hook.ovcache_conn_id, exc) from exc
    blobs = status.get("blob_count", len(status.get("entries") or []))
    return f"cache_dir {cache_dir}: {blobs} blob(s)"


def _repository(hook: OvcacheHook) -> str:
    repository = hook.config.repository
    if not repository:
        return "repository not set (warm and the version sensors need it)"
    try:
        models = hook.models(timeout=CHECK_TIMEOUT)
    except OvcacheHookError as exc:
        message = exc.failure.message if isinstance(exc, AgentCommandError) else exc
        raise _fail("repository", hook.ovcache_conn_id, f"{repository} cannot be read: {message}") from exc
    return f"repository {repository}: {len(models.models)} model(s)"


def _devices(hook: OvcacheHook) -> str:
    wanted = list(hook.config.devices)
    try:
        found = hook.devices(wanted, timeout=CHECK_TIMEOUT)
    except AgentCommandError as exc:
        hint = f" ({exc.failure.hint})" if exc.failure.hint else ""
        raise _fail("devices", hook.ovcache_conn_id, f"{exc.failure.message}{hint}") from exc
    except OvcacheHookError as exc:
        raise _fail("devices", hook.ovcache_conn_id, exc) from exc
    cannot = [d.name for d in found.devices if not d.can_cache]
    if cannot:
        raise _fail(
            "devices",
            hook.ovcache_conn_id,
            f"{', '.join(cannot)} cannot cache compiled models (no EXPORT_IMPORT): a warm would write no blob; "
            "remove it from devices",
        )
    return "devices " + ", ".join(d.name for d in found.devices) + " present and can cache"


def check_connection(hook: OvcacheHook) -> tuple[bool, str]:
    """Run every check; ``(False, the first failure)`` or ``(True, what each check found)``.

    :param hook: the hook of the connection being tested (see :meth:`.ovcache.OvcacheHook.test_connection`).
    """
    found = []
    try:
        found.append(_agent(hook))
        if not hook.config.cache_dir and not hook.config.repository:
            raise _fail("cache_dir", hook.ovcache_conn_id, "neither cache_dir nor repository is set: no task could use this host")
        for check in (_cache_dir, _repository, _devices):
            found.append(check(hook))
    except CheckFailed as exc:
        return False, str(exc)
    except Exception as exc:  # noqa: BLE001 - the form shows it; it never raises
        return False, f"connection {hook.ovcache_conn_id}: {type(exc).__name__}: {exc}"
    return True, "; ".join(found)
