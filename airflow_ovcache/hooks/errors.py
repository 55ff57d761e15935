"""Failures of the Airflow side, each one a task failure a person can act on.

Every message starts with the coordinates (host, model, version, device) the
way the agent's own errors do, then says what went wrong and what to do. The
coordinates of a request may be sets ("models mlp, tiny"); the agent's error,
when there is one, names the exact item.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowException

from .. import outcomes
from ..core.text import one_line
from ..protocol.location import Location

INSTALL_HINT = "install the agent on that host with 'pip install airflow-ovcache' (same version as the provider), or set 'agent_command' on the ovcache connection to where it is installed"


def _flat(text: str) -> str:
    return one_line(text)


class OvcacheHookError(AirflowException):
    """Base class of the Airflow side's failures: ``target`` says where, ``hint`` what to do; ``str()`` is one line with both.

    Not the agent's :class:`airflow_ovcache.core.errors.OvcacheError`: that one is raised inside
    the agent and reaches a DAG only as the envelope's ``error``, re-raised here as
    :class:`AgentCommandError`. A DAG catches this class.

    :param target: the host, model, version and device the failure is about.
    :param message: what went wrong (flattened onto one line).
    :param hint: what to do; ``None`` takes the class's ``default_hint``, ``""`` adds none.
    """

    default_hint = ""

    def __init__(self, target: Location, message: str, hint: str | None = None) -> None:
        self.target = target
        self.reason = _flat(message)
        # None takes the class's default hint; "" means there is nothing useful to add.
        self.hint = _flat(self.default_hint if hint is None else hint)
        text = f"{target.label()}: {self.reason}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)


class ConnectionConfigError(OvcacheHookError):
    """The ovcache connection (or an operator argument) is incomplete or contradictory."""


class AgentNotInstalled(OvcacheHookError):
    """The agent command is not found on the host, or cannot be executed there."""

    default_hint = INSTALL_HINT


class AgentTooOld(OvcacheHookError):
    """The agent answered, but not in the JSON envelope version this provider reads."""

    default_hint = INSTALL_HINT


class AgentOutputError(OvcacheHookError):
    """The agent's output could not be read (not JSON, truncated)."""


class AgentTimeout(OvcacheHookError):
    """The agent ran past its time limit (or its task was killed) and was stopped with its process group."""

    default_hint = "raise command_timeout on the operator or the connection, or warm fewer items per task"


class AgentCrashed(OvcacheHookError):
    """The agent process died without an answer (killed by a signal, out of memory...)."""

    default_hint = "see the agent's last lines above; an OpenVINO crash ends only the agent, rerun the task to retry"


class AgentCommandError(OvcacheHookError):
    """The agent ran and reported an error of its own (``error`` in the envelope).

    :param target: what the request was about; the agent's error fills in what it knows better.
    :param failure: the envelope's error (its code, message, hint and coordinates).
    :param conn_id: the ovcache connection, to phrase the agent's hint in Airflow settings.
    """

    def __init__(self, target: Location, failure: Any, conn_id: str | None = None) -> None:
        self.failure = failure
        where = Location(
            failure.host or target.host,
            failure.model or target.model,
            str(failure.version) if failure.version is not None else target.version,
            failure.device or target.device,
        )
        hint = airflow_hint(failure.hint, conn_id, where.host or "") if conn_id and failure.hint else failure.hint
        super().__init__(where, f"{failure.message} [{failure.code}]", hint)

    @property
    def code(self) -> str:
        """The agent's stable error code (``cache-dir``, ``usage``...)."""
        return str(self.failure.code)


class AgentUsageError(AgentCommandError):
    """The agent refused an argument value (``usage``): the operator or DAG passed something it cannot take.

    Raised with the agent's own message (which names the flag and what it accepts),
    never as :class:`AgentTooOld`: reinstalling the agent would not fix it.
    """


class ItemsFailed(OvcacheHookError):
    """Some items of a batch (warm) failed; each failure is listed with its coordinates."""


class ProblemsFound(OvcacheHookError):
    """Verify found problems, or invalidate could not meet the size budget."""


class SSHConnectError(OvcacheHookError):
    """The SSH host could not be reached (refused, timed out, unreachable) even after the retries."""

    default_hint = "check that the host is up and sshd listens on that address and port; the hook retried with backoff"


class SSHLoginRefused(OvcacheHookError):
    """The SSH server rejected the login (user or key); not retried."""

    default_hint = "the SSH server rejected the login: check the user and the key (key_file or private_key) on the SSH connection and the host's authorized_keys"


class HostKeyMismatch(OvcacheHookError):
    """The host presented another key than the one pinned for it; not retried."""

    default_hint = "the host presented a different key than the one pinned: if the host was really re-installed, update 'host_key' on the SSH connection (ssh-keyscan), otherwise treat it as an attack"


class HostKeyNotPinned(OvcacheHookError):
    """No host key is pinned for the host and the connection does not opt out of checking it."""


class CachingUnsupported(OvcacheHookError):
    """A device the DAG waits for cannot cache (no ``EXPORT_IMPORT``), so no blob will ever appear.

    Not the agent's :class:`airflow_ovcache.core.errors.DeviceCannotCache`, which refuses a warm
    for such a device on the host; this one ends a sensor's or trigger's wait.
    """

    default_hint = "OpenVINO writes no cache blob for a device without EXPORT_IMPORT; warm another device, or set fail_when_cannot_cache=False to keep waiting for a driver that can"


# The failure kinds and how they read are defined once, Airflow-free, in outcomes.py (which the
# summaries and the nightly report use); this maps the hook's exceptions onto them.
def failure_kind(exc: BaseException) -> str:
    """One of :data:`airflow_ovcache.outcomes.FAILURE_KINDS` for an exception raised by the hook, an operator or a sensor.

    :param exc: the exception a task failed with.
    """
    if isinstance(exc, SSHConnectError):
        return outcomes.CANNOT_CONNECT
    if isinstance(exc, SSHLoginRefused):
        return outcomes.LOGIN_REFUSED
    if isinstance(exc, (HostKeyMismatch, HostKeyNotPinned)):
        return outcomes.HOST_KEY
    if isinstance(exc, (AgentNotInstalled, AgentTooOld)):
        return outcomes.AGENT_MISSING
    if isinstance(exc, (AgentCrashed, AgentTimeout, AgentOutputError)):
        return outcomes.AGENT_CRASHED
    if isinstance(exc, AgentCommandError):
        return outcomes.AGENT_ERROR
    if isinstance(exc, ConnectionConfigError):
        return outcomes.CONFIG
    if isinstance(exc, (ItemsFailed, ProblemsFound)):
        return outcomes.CACHE
    return outcomes.TASK


# The agent's hints are written for a person at the host's terminal ("point --cache-dir at a
# directory"). In Airflow the same fix is a connection field, an inventory key or a task
# argument: these say which.
_KNOBS = (
    ("--no-cache-device=skip", "no_cache_device='skip' on the warm task"),
    ("--unsafe-cache-dir warn", "OVCACHE_UNSAFE_CACHE_DIR=warn in the agent's environment on the host"),
    ("--encryption-key-file", "encryption_key_file on the task (or encryption_key_conn_id on connection {conn})"),
    ("--ovms-path-map SERVER=AGENT", "ovms_path_map (on connection {conn} or host {host} in the fleet inventory)"),
    ("--ovms-path-map", "ovms_path_map (on connection {conn} or host {host} in the fleet inventory)"),
    ("--ovms-config", "ovms_config (on connection {conn} or host {host} in the fleet inventory)"),
    ("--cache-dir", "cache_dir (field of connection {conn}, or of host {host} in the fleet inventory)"),
    ("--repository", "repository (field of connection {conn}, or of host {host} in the fleet inventory)"),
    ("--model-file", "model_file on the warm task"),
    ("--cache-mode", "cache_mode on the warm task"),
    ("--compile-mode", "compile_mode on the warm task"),
    ("--lock-timeout", "the agent's --lock-timeout (in agent_command of connection {conn})"),
    ("--versions", "versions on the task (retain in the fleet inventory)"),
    ("--device", "devices (on connection {conn} or host {host} in the fleet inventory)"),
    ("--profile", "profile (on connection {conn} or host {host} in the fleet inventory)"),
    ("--loader", "loader (on connection {conn} or host {host} in the fleet inventory)"),
    ("--force", "force=True on the warm task"),
    ("ovcache --group", "OVCACHE_GROUP in the agent's environment on the host"),
    ("'ovcache invalidate --dry-run'", "an invalidate task with dry_run=True"),
    ("'ovcache invalidate'", "an invalidate task (OvcacheInvalidateOperator)"),
)


def airflow_hint(hint: str, conn_id: str, host: str) -> str:
    """The agent's hint with its command-line flags replaced by the Airflow-side setting that does the same.

    :param hint: the agent's hint, written for a person at the host's terminal.
    :param conn_id: the ovcache connection, named in the settings it points to.
    :param host: the host's name, for settings that live in the fleet inventory.
    """
    out = hint
    for flag, knob in _KNOBS:
        if flag in out:
            out = out.replace(flag, knob.format(conn=conn_id, host=host))
    return out


class EvidenceUnavailable(OvcacheHookError):
    """The host cannot show whether the server read its blobs (no reliable access times)."""

    default_hint = "the host cannot show whether the server read its blobs (a noatime or network mount, or an agent reading without O_NOATIME): remount the cache directory relatime, run the agent as the cache's owner, or set fail_when_unknown=False"
