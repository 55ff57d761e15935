"""One target host as an ``ovcache`` connection describes it.

The connection's standard ``host`` field is the name the host is reported by
(a fleet inventory name); everything else lives in the extra, as the fields
declared in ``get_provider_info``. Keys are accepted bare (``cache_dir``) or
with the form prefix older UIs write (``extra__ovcache__cache_dir``).
"""

from __future__ import annotations

import shlex
import socket
import sys
from dataclasses import dataclass, replace
from typing import Any

from .errors import ConnectionConfigError, Target

CONN_TYPE = "ovcache"
TRANSPORTS = ("local", "ssh")
DEFAULT_COMMAND_TIMEOUT = 3600.0
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_CONNECT_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 2.0
DEFAULT_SSH_AGENT = ("ovcache",)


def local_agent_command() -> tuple[str, ...]:
    """The agent that ships with this provider, run by the worker's own interpreter."""
    return (sys.executable, "-m", "airflow_ovcache.cli.main")


def split_list(value: Any) -> tuple[str, ...]:
    """``"CPU, GPU"``, ``["CPU", "GPU"]`` or ``None`` as a tuple of names."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())
    return tuple(str(part).strip() for part in value if str(part).strip())


def _field(extra: dict[str, Any], name: str) -> Any:
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        value = extra.get(key)
        if value not in (None, ""):
            return value
    return None


def _number(extra: dict[str, Any], name: str, default: float, where: Target, minimum: float = 0.0) -> float:
    raw = _field(extra, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConnectionConfigError(where, f"connection field {name}={raw!r} is not a number") from None
    if value < minimum:
        raise ConnectionConfigError(where, f"connection field {name}={raw!r} must be at least {minimum:g}")
    return value


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class HostConfig:
    """Everything the hook needs to reach one host and run its agent there."""

    conn_id: str
    transport: str = "local"
    host_name: str | None = None
    cache_dir: str | None = None
    repository: str | None = None
    devices: tuple[str, ...] = ()
    agent_command: tuple[str, ...] = ()
    serving_config: str | None = None
    # A connection whose password is the cache encryption key (see hooks/keys.py).
    encryption_key_conn_id: str | None = None
    ssh_conn_id: str | None = None
    command_timeout: float | None = DEFAULT_COMMAND_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    connect_retries: int = DEFAULT_CONNECT_RETRIES
    retry_backoff: float = DEFAULT_RETRY_BACKOFF
    remote_timeout: bool = True

    @classmethod
    def from_connection(cls, conn: Any) -> HostConfig:
        conn_id = str(getattr(conn, "conn_id", None) or "?")
        host_name = (getattr(conn, "host", None) or "").strip() or None
        where = Target(host_name or f"of connection {conn_id}")
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else dict(getattr(conn, "extra", None) or {})
        transport = str(_field(extra, "transport") or "local").strip().lower()
        if transport not in TRANSPORTS:
            raise ConnectionConfigError(
                where, f"connection {conn_id}: transport {transport!r} is not one of {', '.join(TRANSPORTS)}"
            )
        ssh_conn_id = _field(extra, "ssh_conn_id")
        if transport == "ssh" and not ssh_conn_id:
            raise ConnectionConfigError(
                where,
                f"connection {conn_id} uses the ssh transport but names no ssh_conn_id",
                "set ssh_conn_id to an SSH connection (conn type ssh) that reaches the host",
            )
        raw_command = _field(extra, "agent_command")
        if raw_command:
            try:
                command = tuple(shlex.split(str(raw_command))) if isinstance(raw_command, str) else tuple(map(str, raw_command))
            except ValueError as exc:
                raise ConnectionConfigError(
                    where, f"connection {conn_id}: agent_command {raw_command!r} cannot be split: {exc}"
                ) from None
        else:
            command = local_agent_command() if transport == "local" else DEFAULT_SSH_AGENT
        timeout = _number(extra, "command_timeout", DEFAULT_COMMAND_TIMEOUT, where)
        return cls(
            conn_id=conn_id,
            transport=transport,
            host_name=host_name,
            cache_dir=_field(extra, "cache_dir"),
            repository=_field(extra, "repository"),
            devices=split_list(_field(extra, "devices")),
            agent_command=command,
            serving_config=_field(extra, "serving_config"),
            encryption_key_conn_id=_field(extra, "encryption_key_conn_id"),
            ssh_conn_id=str(ssh_conn_id) if ssh_conn_id else None,
            command_timeout=timeout or None,  # 0 means no limit
            connect_timeout=_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, where, minimum=0.1),
            connect_retries=int(_number(extra, "connect_retries", DEFAULT_CONNECT_RETRIES, where)),
            retry_backoff=_number(extra, "retry_backoff", DEFAULT_RETRY_BACKOFF, where),
            remote_timeout=_flag(_field(extra, "remote_timeout"), True),
        )

    def with_overrides(self, **overrides: Any) -> HostConfig:
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "devices" in changes:
            changes["devices"] = split_list(changes["devices"])
        if "agent_command" in changes and isinstance(changes["agent_command"], str):
            changes["agent_command"] = tuple(shlex.split(changes["agent_command"]))
        return replace(self, **changes) if changes else self

    def label(self, ssh_host: str | None = None) -> str:
        """The host's name before the agent has said its own."""
        if self.host_name:
            return self.host_name
        if self.transport == "ssh":
            return ssh_host or f"via {self.ssh_conn_id}"
        return socket.gethostname()
