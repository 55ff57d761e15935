"""The hook: run ``ovcache`` agent commands on one host and return typed results.

One protocol, two transports. The hook builds the agent's command line, hands
it to the transport the connection names (a local subprocess, or SSH through
an SSH provider connection), reads the versioned JSON envelope and turns every
way a run can go wrong into one task failure that names the host, model,
version and device:

=========================  ==============================================
agent not found (127/126)  :class:`~.errors.AgentNotInstalled`, with how to install it
not our envelope version   :class:`~.errors.AgentTooOld`
killed by a signal         :class:`~.errors.AgentCrashed`
over the time limit        :class:`~.errors.AgentTimeout` (the process group is stopped)
``error`` in the envelope  :class:`~.errors.AgentCommandError` (the agent's own message)
=========================  ==============================================

Progress lines the agent prints on stderr are logged as they arrive. Neither
OpenVINO nor paramiko is imported here.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from ..core import values
from ..core.text import printable
from .config import CONN_TYPE, HostConfig, split_list
from .envelope import AgentRun
from .errors import AgentCrashed, AgentNotInstalled, ConnectionConfigError, Target
from .keys import KEY_FLAG, KEYED_COMMANDS, read_connection_key, stdin_payload
from .reports import (
    AgentVersion,
    DevicesReport,
    InvalidateReport,
    ModelsReport,
    RewarmReport,
    VerifyReport,
    WarmReport,
)
from .transport import RawResult, Transport, signal_name


def _version_number(value: Any) -> int:
    return values.parse_count(value, minimum=1, maximum=10**18 - 1)


def _versions_label(versions: str | None, numbers: Sequence[int] | None) -> str:
    if numbers:
        return ", ".join(str(n) for n in numbers)
    return versions or "latest:1"


class OvcacheHook(BaseHook):
    """
    Run ``ovcache`` agent commands on one target host.

    The host is described by an ``ovcache`` connection: its cache directory,
    model repository, devices, how it is reached (``transport`` ``local`` or
    ``ssh`` with ``ssh_conn_id``) and the agent command. Keyword arguments
    override the connection's values for this hook.

    :param ovcache_conn_id: the ``ovcache`` connection of the target host.
    :param cache_dir: OpenVINO ``cache_dir`` on the host (overrides the connection).
    :param repository: model repository root on the host (overrides the connection).
    :param devices: default devices, a list or comma-separated (overrides the connection).
    :param agent_command: the agent's command line on the host (overrides the connection).
    :param command_timeout: seconds an agent command may run (overrides the connection).
    :param serving_config: serving config (TOML/JSON) on the host with per-model cache specs.
    :param host_name: the name the host is reported by (overrides the connection's ``host``),
        e.g. its name in the fleet inventory.
    :param encryption_key_conn_id: a connection whose password is the cache encryption key
        (overrides the connection's); the agent gets it on its standard input, see ``hooks/keys.py``.
    """

    conn_name_attr = "ovcache_conn_id"
    default_conn_name = "ovcache_default"
    conn_type = CONN_TYPE
    hook_name = "OpenVINO cache host"

    def __init__(
        self,
        ovcache_conn_id: str = default_conn_name,
        *,
        cache_dir: str | None = None,
        repository: str | None = None,
        devices: Sequence[str] | str | None = None,
        agent_command: Sequence[str] | str | None = None,
        command_timeout: float | None = None,
        serving_config: str | None = None,
        host_name: str | None = None,
        encryption_key_conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.ovcache_conn_id = ovcache_conn_id
        self._overrides: dict[str, Any] = {
            "host_name": host_name or None,
            "cache_dir": cache_dir,
            "repository": repository,
            "devices": split_list(devices) or None,
            "agent_command": agent_command,
            "command_timeout": command_timeout,
            "serving_config": serving_config,
            "encryption_key_conn_id": encryption_key_conn_id or None,
        }
        self._transport: Transport | None = None
        self._key: bytes | None = None

    # -- configuration ------------------------------------------------------------------------
    @cached_property
    def config(self) -> HostConfig:
        try:
            conn = self.get_connection(self.ovcache_conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, a secrets backend error...
            raise ConnectionConfigError(
                Target(f"of connection {self.ovcache_conn_id}"),
                f"connection {self.ovcache_conn_id!r} cannot be read: {exc}",
                "create an ovcache connection for the host (see docs/connections.md)",
            ) from exc
        if conn.conn_type and conn.conn_type != CONN_TYPE:
            self.log.warning(
                "connection %s has type %r, not %r; reading it as an ovcache connection", conn.conn_id, conn.conn_type, CONN_TYPE
            )
        return HostConfig.from_connection(conn).with_overrides(**self._overrides)

    def get_conn(self) -> Transport:
        """The transport to the host (built once per hook)."""
        if self._transport is None:
            cfg = self.config
            if cfg.transport == "ssh":
                from .transport_ssh import SSHTransport

                assert cfg.ssh_conn_id is not None
                self._transport = SSHTransport(
                    cfg.ssh_conn_id,
                    cfg.agent_command,
                    connect_timeout=cfg.connect_timeout,
                    connect_retries=cfg.connect_retries,
                    retry_backoff=cfg.retry_backoff,
                    remote_timeout=cfg.remote_timeout,
                )
            else:
                from .transport_local import LocalTransport

                self._transport = LocalTransport(cfg.agent_command)
        return self._transport

    @property
    def host(self) -> str:
        """The host's name as failures report it before the agent has answered."""
        cfg = self.config
        ssh_host = None
        if cfg.transport == "ssh" and not cfg.host_name:
            transport = self.get_conn()
            ssh_host = transport.ssh_hook(Target(f"via {cfg.ssh_conn_id}")).remote_host  # type: ignore[attr-defined]
        return cfg.label(ssh_host)

    def target(self, model: str | None = None, version: str | None = None, device: str | None = None) -> Target:
        return Target(self.host, model, version, device)

    def _require(self, value: str | None, name: str, target: Target) -> str:
        if not value:
            raise ConnectionConfigError(
                target, f"no {name} given: set {name} on connection {self.ovcache_conn_id} or pass it to the operator"
            )
        return value

    # -- running the agent --------------------------------------------------------------------
    def _argv(self, command: str, args: Iterable[str]) -> list[str]:
        argv = [command, "--json"]
        if self.config.host_name:
            argv += ["--host-name", self.config.host_name]
        return [*argv, *args]

    def _key_input(self, command: str, args: Sequence[str], target: Target) -> tuple[list[str], bytes | None]:
        """The args with ``--encryption-key-stdin`` and the key to write to the agent's stdin, if keyed."""
        conn_id = self.config.encryption_key_conn_id
        if not conn_id or command not in KEYED_COMMANDS or "--encryption-key-file" in args:
            return list(args), None
        if self._key is None:
            self._key = read_connection_key(self, conn_id, target)
        return [*args, KEY_FLAG], stdin_payload(self._key)

    def _log_line(self, line: str) -> None:
        # The agent's own error and warning lines keep their level in the task log.
        if line.startswith("ovcache: error:"):
            level = logging.ERROR
        elif line.startswith(("ovcache: warning:", "ovcache: unrepaired:", "ovcache: WARNING:")):
            level = logging.WARNING
        else:
            level = logging.INFO
        self.log.log(level, "[%s] %s", printable(self.config.host_name or "agent"), printable(line))

    def run_agent(
        self, command: str, args: Sequence[str] = (), *, target: Target | None = None, timeout: float | None = None
    ) -> AgentRun:
        """Run ``ovcache <command> --json <args>`` on the host and return the parsed envelope.

        Exit codes 0 and 1 return; an envelope ``error`` raises :class:`AgentCommandError`;
        an agent that is missing, too old, crashed or timed out raises its own error.
        """
        target = target or self.target()
        transport = self.get_conn()
        args, stdin = self._key_input(command, args, target)
        raw = transport.run(
            self._argv(command, args), target=target, timeout=self._timeout(timeout), on_line=self._log_line, stdin=stdin
        )
        return self._interpret(raw, target)

    async def arun_agent(
        self, command: str, args: Sequence[str] = (), *, target: Target | None = None, timeout: float | None = None
    ) -> AgentRun:
        """:meth:`run_agent` for triggers: the agent runs without blocking the event loop."""
        # Reading connections is synchronous in the Task SDK; keep it off the event loop.
        if target is None:
            target = await asyncio.to_thread(self.target)
        transport = await asyncio.to_thread(self.get_conn)
        args, stdin = await asyncio.to_thread(self._key_input, command, args, target)
        raw = await transport.arun(
            self._argv(command, args), target=target, timeout=self._timeout(timeout), on_line=self._log_line, stdin=stdin
        )
        return self._interpret(raw, target)

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self.config.command_timeout
        return self._value("timeout", timeout, lambda v: values.parse_seconds(v, allow_zero=False), self.target())

    @staticmethod
    def _value(name: str, value: Any, parse: Any, target: Target) -> Any:
        """An argument read strictly, as the agent would read its flag; a refusal names the argument."""
        try:
            return parse(value)
        except ValueError as exc:
            raise ConnectionConfigError(target, f"argument {name}: {exc}", "fix the operator or hook argument") from None

    def _interpret(self, raw: RawResult, target: Target) -> AgentRun:
        from .errors import AgentCommandError

        agent = shlex.join(self.config.agent_command)
        last = " | ".join(raw.stderr_tail[-3:]) or "no output"
        if raw.exit_code == 127:
            raise AgentNotInstalled(target, f"the agent command {agent!r} was not found on the host ({last})")
        if raw.exit_code == 126:
            raise AgentNotInstalled(target, f"the agent command {agent!r} cannot be executed on the host ({last})")
        if raw.exit_code is None:
            how = (
                f"was killed by {signal_name(raw.signal)}" if raw.signal else "ended without an exit status (killed by a signal)"
            )
            raise AgentCrashed(target, f"the agent {how} before it answered (last lines: {last})")
        run = AgentRun.parse(raw.stdout, raw.exit_code, target, raw.stderr_tail)
        if run.error is not None:
            where = target.with_host(run.host)
            if run.error.code in ("unknown-command", "unknown-option"):
                from .errors import AgentTooOld

                raise AgentTooOld(where, f"the agent {run.agent_version} does not know what it was asked: {run.error.message}")
            if run.error.code == "usage":
                from .errors import AgentUsageError

                raise AgentUsageError(where, run.error, self.ovcache_conn_id)
            raise AgentCommandError(where, run.error, self.ovcache_conn_id)
        return run

    def kill(self) -> None:
        """Stop the agent this hook is running, if any (for ``on_kill``)."""
        if self._transport is not None:
            self._transport.kill()

    # -- commands -----------------------------------------------------------------------------
    def warm_args(
        self,
        *,
        models: Sequence[str] | None = None,
        versions: str | None = None,
        version_numbers: Sequence[int] | None = None,
        devices: Sequence[str] | None = None,
        properties: dict[str, Any] | None = None,
        compile_mode: str | None = None,
        cache_mode: str | None = None,
        model_file: str | None = None,
        serving_config: str | None = None,
        encryption_key_file: str | None = None,
        no_cache_device: str | None = None,
        confirm: bool = False,
        force: bool = False,
        profile: str | None = None,
        loader: str | None = None,
        loader_path: str | None = None,
        ovms_config: str | None = None,
        ovms_path_map: dict[str, str] | None = None,
    ) -> tuple[list[str], Target]:
        cfg = self.config
        ovms = ovms_config or cfg.ovms_config
        devices = [] if ovms else list(devices or cfg.devices)
        target = self.target(
            ", ".join(models) if models else "(all in the repository)",
            _versions_label(versions, version_numbers),
            ", ".join(devices) if devices else ("(from the OVMS config)" if ovms else "CPU"),
        )
        args = [
            "--cache-dir",
            self._require(cfg.cache_dir, "cache_dir", target),
            "--repository",
            self._require(cfg.repository, "repository", target),
        ]
        for model in models or ():
            args += ["--model", model]
        if version_numbers:
            for number in version_numbers:
                args += ["--version-number", str(self._value("version_numbers", number, _version_number, target))]
        elif versions:
            args += ["--versions", versions]
        if ovms:
            # The server's own config.json says how it compiles; nothing else about the compile is passed.
            args += self._ovms_args(ovms, ovms_path_map)
        else:
            for device in devices:
                args += ["--device", device]
            for key, value in (properties or {}).items():
                args += ["--property", f"{key}={value}"]
            if compile_mode:
                args += ["--compile-mode", compile_mode]
            if cache_mode:
                args += ["--cache-mode", cache_mode]
            if model_file:
                args += ["--model-file", model_file]
            if encryption_key_file:
                # A key file on the host; without one, a key connection's key goes on stdin.
                args += ["--encryption-key-file", encryption_key_file]
            config = serving_config or cfg.serving_config
            if config:
                args += ["--config", config]
            chosen = profile or cfg.profile
            if chosen and chosen != "openvino":
                args += ["--profile", chosen]
            if loader or cfg.loader:
                args += ["--loader", str(loader or cfg.loader)]
            if loader_path or cfg.loader_path:
                args += ["--loader-path", str(loader_path or cfg.loader_path)]
        if no_cache_device:
            args += ["--no-cache-device", no_cache_device]
        if confirm:
            args.append("--confirm")
        if force:
            args.append("--force")
        return args, target

    def _ovms_args(self, ovms_config: str, path_map: dict[str, str] | None) -> list[str]:
        """``--ovms-config`` and one ``--ovms-path-map SERVER=AGENT`` per mapping (argument, else connection)."""
        args = ["--ovms-config", ovms_config]
        pairs = sorted(path_map.items()) if path_map else list(self.config.ovms_path_map)
        for server, agent in pairs:
            args += ["--ovms-path-map", f"{server}={agent}"]
        return args

    def warm(self, *, timeout: float | None = None, **kwargs: Any) -> WarmReport:
        """Compile model versions into the host's cache as the server would (see :meth:`warm_args`)."""
        args, target = self.warm_args(**kwargs)
        return WarmReport.from_run(self.run_agent("warm", args, target=target, timeout=timeout))

    def verify_args(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
        load_check: bool = False,
        infer_check: bool = False,
        checksum: str | None = None,
    ) -> tuple[list[str], Target]:
        target = self.target(model, None if version is None else str(version), device)
        args = ["--cache-dir", self._require(self.config.cache_dir, "cache_dir", target)]
        if model:
            args += ["--model", model]
        if version is not None:
            args += ["--version", str(self._value("version", version, _version_number, target))]
        if device:
            args += ["--device", device]
        if load_check:
            args.append("--load-check")
        if infer_check:
            args.append("--infer-check")
        if checksum:
            args += ["--checksum", checksum]
        return args, target

    def verify(self, *, timeout: float | None = None, **kwargs: Any) -> VerifyReport:
        """Check that each managed blob would serve the deployed model (see :meth:`verify_args`)."""
        args, target = self.verify_args(**kwargs)
        return VerifyReport.from_run(self.run_agent("verify", args, target=target, timeout=timeout))

    async def averify(self, *, timeout: float | None = None, **kwargs: Any) -> VerifyReport:
        args, target = await asyncio.to_thread(lambda: self.verify_args(**kwargs))
        return VerifyReport.from_run(await self.arun_agent("verify", args, target=target, timeout=timeout))

    def rewarm(self, *, load_check: bool = True, confirm: bool = True, timeout: float | None = None) -> RewarmReport:
        """Verify the host's cache, rebuild what a warm can fix, verify again (the nightly repair)."""
        target = self.target()
        args = ["--cache-dir", self._require(self.config.cache_dir, "cache_dir", target)]
        if load_check:
            args.append("--load-check")
        if not confirm:
            args.append("--no-confirm")
        return RewarmReport.from_run(self.run_agent("rewarm", args, target=target, timeout=timeout))

    def invalidate_args(
        self,
        *,
        models: Sequence[str] | None = None,
        versions: str | None = None,
        stale: bool = True,
        foreign: bool = True,
        orphans: bool = False,
        orphan_min_age: float | None = None,
        max_bytes: str | int | None = None,
        dry_run: bool = False,
        ovms_config: str | None = None,
        ovms_path_map: dict[str, str] | None = None,
    ) -> tuple[list[str], Target]:
        target = self.target(", ".join(models) if models else None, versions)
        args = ["--cache-dir", self._require(self.config.cache_dir, "cache_dir", target)]
        ovms = ovms_config or self.config.ovms_config
        if ovms and not versions:
            args += self._ovms_args(ovms, ovms_path_map)  # keep what the server's own version policies serve
        for model in models or ():
            args += ["--model", model]
        if versions:
            args += ["--versions", versions]
        if not stale:
            args.append("--no-stale")
        if not foreign:
            args.append("--no-foreign")
        if orphans:
            args.append("--orphans")
        if orphan_min_age is not None:
            args += ["--orphan-min-age", repr(self._value("orphan_min_age", orphan_min_age, values.parse_seconds, target))]
        if max_bytes is not None:
            args += ["--max-bytes", str(self._value("max_bytes", max_bytes, values.parse_size, target))]
        if dry_run:
            args.append("--dry-run")
        return args, target

    def invalidate(self, *, timeout: float | None = None, **kwargs: Any) -> InvalidateReport:
        """Remove blobs of retired versions, stale and foreign blobs (see :meth:`invalidate_args`)."""
        args, target = self.invalidate_args(**kwargs)
        return InvalidateReport.from_run(self.run_agent("invalidate", args, target=target, timeout=timeout))

    def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        """What the cache directory holds (the agent's ``status`` result, as is)."""
        target = self.target()
        args = ["--cache-dir", self._require(self.config.cache_dir, "cache_dir", target)]
        return self.run_agent("status", args, target=target, timeout=timeout).result

    def devices_args(self, devices: Sequence[str] | None = None) -> tuple[list[str], Target]:
        names = list(devices or ())
        args: list[str] = []
        for name in names:
            args += ["--device", name]
        return args, self.target(device=", ".join(names) or None)

    def devices(self, devices: Sequence[str] | None = None, *, timeout: float | None = None) -> DevicesReport:
        """Devices on the host, their capabilities and whether they can cache (``EXPORT_IMPORT``)."""
        args, target = self.devices_args(devices)
        return DevicesReport.from_run(self.run_agent("devices", args, target=target, timeout=timeout))

    async def adevices(self, devices: Sequence[str] | None = None, *, timeout: float | None = None) -> DevicesReport:
        args, target = await asyncio.to_thread(self.devices_args, devices)
        return DevicesReport.from_run(await self.arun_agent("devices", args, target=target, timeout=timeout))

    def models_args(
        self, *, repository: str | None = None, models: Sequence[str] | None = None, versions: str = "all"
    ) -> tuple[list[str], Target]:
        target = self.target(", ".join(models) if models else None)
        args = ["--repository", self._require(repository or self.config.repository, "repository", target), "--versions", versions]
        for model in models or ():
            args += ["--model", model]
        return args, target

    def models(self, *, timeout: float | None = None, **kwargs: Any) -> ModelsReport:
        """Models and versions in the host's repository (see :meth:`models_args`)."""
        args, target = self.models_args(**kwargs)
        return ModelsReport.from_run(self.run_agent("models", args, target=target, timeout=timeout))

    async def amodels(self, *, timeout: float | None = None, **kwargs: Any) -> ModelsReport:
        args, target = await asyncio.to_thread(lambda: self.models_args(**kwargs))
        return ModelsReport.from_run(await self.arun_agent("models", args, target=target, timeout=timeout))

    def agent_version(self, *, timeout: float | None = None) -> AgentVersion:
        """The agent's version, envelope schema and OpenVINO version on the host."""
        return AgentVersion.from_run(self.run_agent("version", timeout=timeout))

    def test_connection(self) -> tuple[bool, str]:
        """The UI's Test button: could the tasks run on this host as the connection describes it?

        Answering "the agent replied" is not enough: a host whose cache directory is a
        file passed that and then failed every nightly run. Each check runs the agent
        command a task would run, and a failure names the connection field to fix:

        1. the agent answers, in an envelope version this provider reads
           (``transport``, ``ssh_conn_id``, ``agent_command``);
        2. ``cache_dir`` is a usable cache directory (``ovcache status``); one that does
           not exist yet is fine, the first warm creates it;
        3. ``repository`` is readable (``ovcache models``);
        4. every device in ``devices`` is present on the host and can cache (``ovcache devices``).

        Returns ``(False, one line naming the field)`` at the first failure, else
        ``(True, a summary)``. Never raises.
        """
        from .connection_check import check_connection

        return check_connection(self)
