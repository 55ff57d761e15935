"""One target host as an ``ovcache`` connection describes it.

The connection's standard ``host`` field is the name the host is reported by
(a fleet inventory name); everything else lives in the extra, as the fields
declared in ``get_provider_info``. Keys are accepted bare (``cache_dir``) or
with the form prefix older UIs write (``extra__ovcache__cache_dir``).
"""

from __future__ import annotations

import json
import shlex
import socket
import sys
from dataclasses import dataclass, replace
from typing import Any

from ..core import profile_options, values
from ..protocol.location import Location
from .defaults import split_list
from .errors import ConnectionConfigError

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


def _field(extra: dict[str, Any], name: str) -> Any:
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        value = extra.get(key)
        if value not in (None, ""):
            return value
    return None


def _read(extra: dict[str, Any], name: str, default: Any, parse: Any, conn_id: str, where: Location) -> Any:
    """A connection field through a strict reader; a wrong type or value names the connection and the field."""
    raw = _field(extra, name)
    if raw is None:
        return default
    try:
        return parse(raw)
    except ValueError as exc:
        raise ConnectionConfigError(
            where, f"connection {conn_id}: field {name}: {exc}", f"fix {name} in the extra of connection {conn_id}"
        ) from None


def _text(value: Any) -> str:
    return values.string(value, "a string").strip()


def _names(value: Any) -> tuple[str, ...]:
    return tuple(values.string_list(value, split_commas=True))


def _profile(value: Any) -> str:
    name = _text(value).lower()
    found = profile_options.problem(name, {})
    if found is not None and found.kind == "profile":  # its options are checked with them (_check_profile)
        raise ValueError(f"{found.unknown_text}; for OVMS set ovms_config")
    return name


def _check_profile(profile: str | None, options: dict[str, str | None], conn_id: str, where: Location) -> None:
    """A profile and its options (optimum's ``model_class``, GenAI's ``pipeline``) agree, or the field to fix is named."""
    found = profile_options.problem(profile, options)
    if found is None:
        return
    fix = f"in the extra of connection {conn_id}"
    if found.kind == "missing":
        raise ConnectionConfigError(where, f"connection {conn_id}: field profile: {found.missing_text}", f"set {found.key} {fix}")
    if found.kind == "misplaced":
        raise ConnectionConfigError(
            where,
            f"connection {conn_id}: field {found.key}: {found.value} is the {found.owner} profile's, "
            f"but the profile is {found.profile_text}",
            f"set profile to {found.owner} {fix}, or remove {found.key}",
        )
    raise ConnectionConfigError(where, f"connection {conn_id}: field {found.key}: {found.unknown_text}", f"fix {found.key} {fix}")


def _path_map(value: Any) -> tuple[tuple[str, str], ...]:
    """``{"/models": "/srv/models"}``, as a JSON object or its text: server path prefix to agent path prefix."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a JSON object of server path to agent path") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{value!r} is not an object of server path to agent path")
    return tuple(sorted(value.items()))


def _extra(conn: Any, conn_id: str, where: Location) -> dict[str, Any]:
    """The connection's extra as a dict; malformed JSON is reported as such, not read as "no fields".

    ``Connection.extra_dejson`` logs a JSON error and returns ``{}``, after which
    every field looks unset and the task fails saying "no cache_dir given".
    """
    raw = getattr(conn, "extra", None)
    if isinstance(raw, dict):
        return dict(raw)
    if raw in (None, ""):
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConnectionConfigError(
            where,
            f"connection {conn_id}: the extra is not valid JSON ({exc})",
            f'fix the extra of connection {conn_id}: a JSON object such as {{"cache_dir": "/var/cache/ov"}}',
        ) from None
    if not isinstance(data, dict):
        raise ConnectionConfigError(
            where,
            f"connection {conn_id}: the extra is JSON but not an object",
            f"make the extra of connection {conn_id} a JSON object",
        )
    return data


@dataclass(frozen=True)
class HostConfig:
    """Everything the hook needs to reach one host and run its agent there (docs/connections.md).

    :param conn_id: the ovcache connection it was read from.
    :param transport: ``local`` (the worker is the host) or ``ssh``.
    :param host_name: the name the host is reported by (the connection's ``host``).
    :param cache_dir: OpenVINO ``cache_dir`` on the host.
    :param repository: the model repository root on the host.
    :param devices: the devices warmed and checked by default.
    :param agent_command: the agent's command line on the host.
    :param serving_config: a serving config on the host with per-model cache specs.
    :param profile: the host's serving profile (``openvino``, ``python``, ``optimum`` or ``genai``).
    :param loader: a custom loader that compiles as the serving application does.
    :param loader_path: where that loader is found on the host.
    :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class (set with that profile only).
    :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``; set with that profile only).
    :param ovms_config: the OVMS ``config.json`` on the host, when OVMS serves it.
    :param ovms_path_map: ``(server path, agent path)`` pairs for paths in that config.
    :param encryption_key_conn_id: a connection whose password is the cache encryption key.
    :param ssh_conn_id: the SSH connection of an ``ssh`` host.
    :param command_timeout: seconds an agent command may run (``None``: no limit).
    :param connect_timeout: seconds one SSH connect attempt may take.
    :param connect_retries: SSH connect retries for failures that may pass.
    :param retry_backoff: seconds before the first SSH connect retry.
    :param remote_timeout: stop the remote agent on a timeout (off for non-POSIX login shells).
    """

    conn_id: str
    transport: str = "local"
    host_name: str | None = None
    cache_dir: str | None = None
    repository: str | None = None
    devices: tuple[str, ...] = ()
    agent_command: tuple[str, ...] = ()
    serving_config: str | None = None
    # How the host's server compiles (docs/serving-profiles.md): a profile, or OVMS's own config.
    profile: str | None = None
    loader: str | None = None
    loader_path: str | None = None
    model_class: str | None = None
    pipeline: str | None = None
    ovms_config: str | None = None
    ovms_path_map: tuple[tuple[str, str], ...] = ()
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
        """Read and validate an ovcache connection; a bad field raises :class:`~.errors.ConnectionConfigError` naming it.

        :param conn: the Airflow connection (its ``host`` and ``extra``).
        """
        conn_id = str(getattr(conn, "conn_id", None) or "?")
        host_name = (getattr(conn, "host", None) or "").strip() or None
        where = Location(host_name or f"of connection {conn_id}")
        extra = _extra(conn, conn_id, where)
        transport = _read(extra, "transport", "local", _text, conn_id, where).lower()
        if transport not in TRANSPORTS:
            raise ConnectionConfigError(
                where, f"connection {conn_id}: transport {transport!r} is not one of {', '.join(TRANSPORTS)}"
            )
        ssh_conn_id = _read(extra, "ssh_conn_id", None, _text, conn_id, where)
        if transport == "ssh" and not ssh_conn_id:
            raise ConnectionConfigError(
                where,
                f"connection {conn_id} uses the ssh transport but names no ssh_conn_id",
                "set ssh_conn_id to an SSH connection (conn type ssh) that reaches the host",
            )
        raw_command = _field(extra, "agent_command")
        if raw_command:
            try:
                command = (
                    tuple(shlex.split(raw_command)) if isinstance(raw_command, str) else tuple(values.string_list(raw_command))
                )
            except ValueError as exc:
                raise ConnectionConfigError(
                    where, f"connection {conn_id}: agent_command {raw_command!r} cannot be split: {exc}"
                ) from None
        else:
            command = local_agent_command() if transport == "local" else DEFAULT_SSH_AGENT
        timeout = _read(extra, "command_timeout", DEFAULT_COMMAND_TIMEOUT, values.parse_seconds, conn_id, where)
        profile = _read(extra, "profile", None, _profile, conn_id, where)
        model_class = _read(extra, "model_class", None, _text, conn_id, where)
        pipeline = _read(extra, "pipeline", None, _text, conn_id, where)
        _check_profile(profile, {"model_class": model_class, "pipeline": pipeline}, conn_id, where)
        return cls(
            conn_id=conn_id,
            transport=transport,
            host_name=host_name,
            cache_dir=_read(extra, "cache_dir", None, _text, conn_id, where),
            repository=_read(extra, "repository", None, _text, conn_id, where),
            devices=_read(extra, "devices", (), _names, conn_id, where),
            agent_command=command,
            serving_config=_read(extra, "serving_config", None, _text, conn_id, where),
            profile=profile,
            loader=_read(extra, "loader", None, _text, conn_id, where),
            loader_path=_read(extra, "loader_path", None, _text, conn_id, where),
            model_class=model_class,
            pipeline=pipeline,
            ovms_config=_read(extra, "ovms_config", None, _text, conn_id, where),
            ovms_path_map=_read(extra, "ovms_path_map", (), _path_map, conn_id, where),
            encryption_key_conn_id=_read(extra, "encryption_key_conn_id", None, _text, conn_id, where),
            ssh_conn_id=ssh_conn_id or None,
            command_timeout=timeout or None,  # 0 means no limit
            connect_timeout=_read(
                extra,
                "connect_timeout",
                DEFAULT_CONNECT_TIMEOUT,
                lambda v: values.parse_seconds(v, minimum=0.1),
                conn_id,
                where,
            ),
            connect_retries=_read(
                extra, "connect_retries", DEFAULT_CONNECT_RETRIES, lambda v: values.parse_count(v, maximum=100), conn_id, where
            ),
            retry_backoff=_read(extra, "retry_backoff", DEFAULT_RETRY_BACKOFF, values.parse_seconds, conn_id, where),
            remote_timeout=_read(extra, "remote_timeout", True, values.parse_flag, conn_id, where),
        )

    def with_overrides(self, **overrides: Any) -> HostConfig:
        """This config with the hook's arguments that are not ``None`` in place of the connection's.

        :param overrides: field names of this class and their values (``devices`` and ``agent_command``
            may be strings, split as the connection's are).
        """
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "devices" in changes:
            changes["devices"] = split_list(changes["devices"])
        if "agent_command" in changes and isinstance(changes["agent_command"], str):
            changes["agent_command"] = tuple(shlex.split(changes["agent_command"]))
        return replace(self, **changes) if changes else self

    def label(self, ssh_host: str | None = None) -> str:
        """The host's name before the agent has said its own.

        :param ssh_host: the SSH connection's host, for an ``ssh`` host without ``host_name``.
        """
        if self.host_name:
            return self.host_name
        if self.transport == "ssh":
            return ssh_host or f"via {self.ssh_conn_id}"
        return socket.gethostname()
