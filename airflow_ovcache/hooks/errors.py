"""Failures of the Airflow side, each one a task failure a person can act on.

Every message starts with the coordinates (host, model, version, device) the
way the agent's own errors do, then says what went wrong and what to do. The
coordinates of a request may be sets ("models mlp, tiny"); the agent's error,
when there is one, names the exact item.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.sdk.exceptions import AirflowException

from .. import outcomes
from ..core.text import one_line, printable

INSTALL_HINT = "install the agent on that host with 'pip install airflow-ovcache' (same version as the provider), or set 'agent_command' on the ovcache connection to where it is installed"


@dataclass(frozen=True)
class Target:
    """What a request was about: the host and, where known, model, version and device."""

    host: str
    model: str | None = None
    version: str | None = None
    device: str | None = None

    def label(self) -> str:
        # Names come from operator arguments and agent output: escaped, so a failure stays one line.
        parts = [f"host {printable(self.host)}"]
        if self.model:
            parts.append(f"model {printable(self.model)}")
        if self.version:
            parts.append(f"version {printable(self.version)}")
        if self.device:
            parts.append(f"device {printable(self.device)}")
        return ", ".join(parts)

    def with_host(self, host: str | None) -> Target:
        if not host or host == self.host:
            return self
        return Target(host, self.model, self.version, self.device)


def _flat(text: str) -> str:
    return one_line(text)


class OvcacheError(AirflowException):
    """Base class: ``target`` says where, ``hint`` what to do; ``str()`` is one line with both."""

    default_hint = ""

    def __init__(self, target: Target, message: str, hint: str | None = None) -> None:
        self.target = target
        self.reason = _flat(message)
        # None takes the class's default hint; "" means there is nothing useful to add.
        self.hint = _flat(self.default_hint if hint is None else hint)
        text = f"{target.label()}: {self.reason}"
        if self.hint:
            text += f" ({self.hint})"
        super().__init__(text)


class ConnectionConfigError(OvcacheError):
    """The ovcache connection (or an operator argument) is incomplete or contradictory."""


class AgentNotInstalled(OvcacheError):
    default_hint = INSTALL_HINT


class AgentTooOld(OvcacheError):
    """The agent answered, but not in the JSON envelope version this provider reads."""

    default_hint = INSTALL_HINT


class AgentOutputError(OvcacheError):
    """The agent's output could not be read (not JSON, truncated)."""


class AgentTimeout(OvcacheError):
    default_hint = "raise command_timeout on the operator or the connection, or warm fewer items per task"


class AgentCrashed(OvcacheError):
    """The agent process died without an answer (killed by a signal, out of memory...)."""

    default_hint = "see the agent's last lines above; an OpenVINO crash ends only the agent, rerun the task to retry"


class AgentCommandError(OvcacheError):
    """The agent ran and reported an error of its own (``error`` in the envelope)."""

    def __init__(self, target: Target, failure: Any, conn_id: str | None = None) -> None:
        self.failure = failure
        where = Target(
            failure.host or target.host,
            failure.model or target.model,
            str(failure.version) if failure.version is not None else target.version,
            failure.device or target.device,
        )
        hint = airflow_hint(failure.hint, conn_id, where.host) if conn_id and failure.hint else failure.hint
        super().__init__(where, f"{failure.message} [{failure.code}]", hint)

    @property
    def code(self) -> str:
        return str(self.failure.code)


class AgentUsageError(AgentCommandError):
    """The agent refused an argument value (``usage``): the operator or DAG passed something it cannot take.

    Raised with the agent's own message (which names the flag and what it accepts),
    never as :class:`AgentTooOld`: reinstalling the agent would not fix it.
    """


class ItemsFailed(OvcacheError):
    """Some items of a batch (warm) failed; each failure is listed with its coordinates."""


class ProblemsFound(OvcacheError):
    """Verify found problems, or invalidate could not meet the size budget."""


class SSHConnectError(OvcacheError):
    """The SSH host could not be reached (refused, timed out, unreachable) even after the retries."""

    default_hint = "check that the host is up and sshd listens on that address and port; the hook retried with backoff"


class SSHLoginRefused(OvcacheError):
    default_hint = "the SSH server rejected the login: check the user and the key (key_file or private_key) on the SSH connection and the host's authorized_keys"


class HostKeyMismatch(OvcacheError):
    default_hint = "the host presented a different key than the one pinned: if the host was really re-installed, update 'host_key' on the SSH connection (ssh-keyscan), otherwise treat it as an attack"


class HostKeyNotPinned(OvcacheError):
    pass


class DeviceCannotCache(OvcacheError):
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
    """The agent's hint with its command-line flags replaced by the Airflow-side setting that does the same."""
    out = hint
    for flag, knob in _KNOBS:
        if flag in out:
            out = out.replace(flag, knob.format(conn=conn_id, host=host))
    return out


class EvidenceUnavailable(OvcacheError):
    default_hint = "the host cannot show whether the server read its blobs (a noatime or network mount, or an agent reading without O_NOATIME): remount the cache directory relatime, run the agent as the cache's owner, or set fail_when_unknown=False"
