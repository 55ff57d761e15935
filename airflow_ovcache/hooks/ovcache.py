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
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from ..core import profile_options, values
from ..core.text import printable
from ..protocol import ErrorCode
from ..protocol.location import Location
from .commands import (
    DevicesRequest,
    InstallRequest,
    InvalidateRequest,
    ModelsRequest,
    ReleaseRequest,
    Request,
    RequestError,
    RewarmRequest,
    StatusRequest,
    StorePutRequest,
    VerifyRequest,
    WarmRequest,
    agent_argv,
    command_args,
)
from .config import CONN_TYPE, HostConfig
from .defaults import DEFAULT_CONN_ID, split_list
from .envelope import AgentRun
from .errors import AgentCrashed, AgentNotInstalled, ConnectionConfigError
from .keys import KEY_FLAG, KEYED_COMMANDS, read_connection_key, stdin_payload
from .reports import (
    AgentVersion,
    DevicesReport,
    InstallReport,
    InvalidateReport,
    ModelsReport,
    ReleaseReport,
    RewarmReport,
    StorePutReport,
    VerifyReport,
    WarmReport,
)
from .transport import RawResult, Transport, signal_name


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
    default_conn_name = DEFAULT_CONN_ID
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
        """The connection's settings with this hook's overrides, read once and validated."""
        try:
            conn = self.get_connection(self.ovcache_conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException, a secrets backend error...
            raise ConnectionConfigError(
                Location(f"of connection {self.ovcache_conn_id}"),
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

    def files(self) -> Any:
        """The host's files (:class:`~.store_relay.HostFiles`), to relay blob-store sets between hosts."""
        return self.get_conn().files(self.target())

    @property
    def host(self) -> str:
        """The host's name as failures report it before the agent has answered."""
        cfg = self.config
        if cfg.host_name:
            return cfg.label()
        return cfg.label(self.get_conn().remote_host(Location(f"via {cfg.ssh_conn_id}")))

    def target(self, model: str | None = None, version: str | None = None, device: str | None = None) -> Location:
        """Coordinates on this host, for a failure an operator or sensor raises about a request.

        :param model: the model (or models, comma-separated) the request was about.
        :param version: the version (or version policy) it was about.
        :param device: the device (or devices) it was about.
        """
        return Location(self.host, model, version, device)

    # -- running the agent --------------------------------------------------------------------
    def _key_input(self, command: str, args: Sequence[str], target: Location) -> tuple[list[str], bytes | None]:
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
        self, command: str, args: Sequence[str] = (), *, target: Location | None = None, timeout: float | None = None
    ) -> AgentRun:
        """Run ``ovcache <command> --json <args>`` on the host and return the parsed envelope.

        Exit codes 0 and 1 return; an envelope ``error`` raises :class:`AgentCommandError`;
        an agent that is missing, too old, crashed or timed out raises its own error.
        The command methods (:meth:`warm`, :meth:`verify`...) build ``args`` and call this.

        :param command: the agent command (``version``, ``warm``...).
        :param args: its arguments (see :mod:`.commands`); a key connection's key flag is added here.
        :param target: what the run is about, for failures; default this host.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        target = target or self.target()
        transport = self.get_conn()
        args, stdin = self._key_input(command, args, target)
        raw = transport.run(
            agent_argv(command, args, self.config.host_name),
            target=target,
            timeout=self._timeout(timeout),
            on_line=self._log_line,
            stdin=stdin,
        )
        return self._interpret(raw, target)

    async def arun_agent(
        self, command: str, args: Sequence[str] = (), *, target: Location | None = None, timeout: float | None = None
    ) -> AgentRun:
        """:meth:`run_agent` for triggers: the agent runs without blocking the event loop.

        :param command: the agent command (``version``, ``warm``...).
        :param args: its arguments (see :mod:`.commands`).
        :param target: what the run is about, for failures; default this host.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        # Reading connections is synchronous in the Task SDK; keep it off the event loop.
        if target is None:
            target = await asyncio.to_thread(self.target)
        transport = await asyncio.to_thread(self.get_conn)
        args, stdin = await asyncio.to_thread(self._key_input, command, args, target)
        raw = await transport.arun(
            agent_argv(command, args, self.config.host_name),
            target=target,
            timeout=self._timeout(timeout),
            on_line=self._log_line,
            stdin=stdin,
        )
        return self._interpret(raw, target)

    def _timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self.config.command_timeout
        try:
            return values.parse_seconds(timeout, allow_zero=False)
        except ValueError as exc:  # read strictly, as the agent reads its flags; the refusal names the argument
            raise ConnectionConfigError(self.target(), f"argument timeout: {exc}", "fix the operator or hook argument") from None

    def _interpret(self, raw: RawResult, target: Location) -> AgentRun:
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
            if run.error.code in (ErrorCode.UNKNOWN_COMMAND, ErrorCode.UNKNOWN_OPTION):
                from .errors import AgentTooOld

                raise AgentTooOld(where, f"the agent {run.agent_version} does not know what it was asked: {run.error.message}")
            if run.error.code == ErrorCode.USAGE:
                from .errors import AgentUsageError

                raise AgentUsageError(where, run.error, self.ovcache_conn_id)
            raise AgentCommandError(where, run.error, self.ovcache_conn_id)
        return run

    def kill(self) -> None:
        """Stop the agent this hook is running, if any (for ``on_kill``)."""
        if self._transport is not None:
            self._transport.kill()

    # -- commands -----------------------------------------------------------------------------
    def run_request(self, request: Request, *, timeout: float | None = None) -> AgentRun:
        """Run one built request on the host and return the parsed envelope.

        The request's arguments are checked before anything runs: a missing or refused
        value raises :class:`~.errors.ConnectionConfigError` naming the argument and the host.

        :param request: what to ask the agent (see :mod:`.commands`), the connection's defaults filled in.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        target = request.location(self.host)
        return self.run_agent(request.command, self._command_args(request, target), target=target, timeout=timeout)

    async def arun_request(self, request: Request, *, timeout: float | None = None) -> AgentRun:
        """:meth:`run_request` for triggers: the agent runs without blocking the event loop.

        :param request: what to ask the agent, the connection's defaults filled in.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        # Reading connections is synchronous in the Task SDK; keep it off the event loop.
        target = await asyncio.to_thread(lambda: request.location(self.host))
        args = await asyncio.to_thread(self._command_args, request, target)
        return await self.arun_agent(request.command, args, target=target, timeout=timeout)

    def _command_args(self, request: Request, target: Location) -> list[str]:
        try:
            return command_args(request)
        except RequestError as exc:
            if exc.missing:
                needed_by = f" ({exc.needed_by})" if exc.needed_by else ""
                message = (
                    f"no {exc.argument} given{needed_by}: set {exc.argument} on connection {self.ovcache_conn_id} "
                    "or pass it to the operator"
                )
                raise ConnectionConfigError(target, message) from None
            raise ConnectionConfigError(target, str(exc), "fix the operator or hook argument") from None

    def _profile_option(self, key: str, profile: str | None, value: str | None) -> str | None:
        """``--model-class`` or ``--pipeline``: the argument's, else the connection's while the profile is the connection's.

        The connection's class (or pipeline) belongs to its profile: a task that asks for another
        profile does not inherit it.
        """
        if value:
            return value
        configured = getattr(self.config, key)
        return configured if (profile or self.config.profile) == profile_options.OWNER[key] else None

    def _path_map(self, path_map: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
        """``--ovms-path-map`` pairs: the argument's, else the connection's."""
        return tuple(sorted(path_map.items())) if path_map else self.config.ovms_path_map

    def warm(
        self,
        *,
        models: Sequence[str] | None = None,
        versions: str | None = None,
        version_numbers: Sequence[int] | None = None,
        devices: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
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
        model_class: str | None = None,
        pipeline: str | None = None,
        ovms_config: str | None = None,
        ovms_path_map: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> WarmReport:
        """Compile model versions into the host's cache as the server would (``ovcache warm``).

        Arguments left ``None`` take the connection's value where it has one.

        :param models: the models to warm; default every model in the repository.
        :param versions: a version policy (``latest:1``, the default, ``all``, ``specific:1,3``).
        :param version_numbers: exact version numbers to warm, instead of ``versions``.
        :param devices: the devices to compile for; default the connection's ``devices``, else CPU.
        :param properties: OpenVINO compile properties the server passes (``{"PERFORMANCE_HINT": "LATENCY"}``).
        :param compile_mode: how the server calls ``compile_model`` (``path`` or ``model``).
        :param cache_mode: OpenVINO ``CACHE_MODE`` (``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``).
        :param model_file: the model file in each version folder, when there are several.
        :param serving_config: a serving config on the host; default the connection's.
        :param encryption_key_file: a cache encryption key file on the host; without one, the key of
            the connection's ``encryption_key_conn_id`` (if set) goes to the agent's standard input.
        :param no_cache_device: what to do with a device that cannot cache (``fail`` or ``skip``).
        :param confirm: load each new blob back before reporting it warmed.
        :param force: rebuild blobs that are already warm.
        :param profile: the serving profile (``openvino``, ``python``, ``optimum`` or ``genai``); default the connection's.
        :param loader: a custom loader that compiles as the serving application does; default the connection's.
        :param loader_path: where that loader is found on the host; default the connection's.
        :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class; default the connection's when
            the profile is the connection's ``optimum``.
        :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``, the agent's default); default
            the connection's when the profile is the connection's ``genai``.
        :param ovms_config: an OVMS ``config.json`` on the host that says what and how to compile;
            default the connection's. With one, ``devices`` and the compile arguments are not passed.
        :param ovms_path_map: server path to agent path, for paths in that config; default the connection's.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = self._warm_request(
            models=models,
            versions=versions,
            version_numbers=version_numbers,
            devices=devices,
            properties=properties,
            compile_mode=compile_mode,
            cache_mode=cache_mode,
            model_file=model_file,
            serving_config=serving_config,
            encryption_key_file=encryption_key_file,
            no_cache_device=no_cache_device,
            confirm=confirm,
            force=force,
            profile=profile,
            loader=loader,
            loader_path=loader_path,
            model_class=model_class,
            pipeline=pipeline,
            ovms_config=ovms_config,
            ovms_path_map=ovms_path_map,
        )
        return WarmReport.from_run(self.run_request(request, timeout=timeout))

    def _warm_request(
        self,
        *,
        models: Sequence[str] | None,
        versions: str | None,
        version_numbers: Sequence[int] | None,
        devices: Sequence[str] | None,
        properties: Mapping[str, Any] | None,
        compile_mode: str | None,
        cache_mode: str | None,
        model_file: str | None,
        serving_config: str | None,
        encryption_key_file: str | None,
        profile: str | None,
        loader: str | None,
        loader_path: str | None,
        model_class: str | None,
        pipeline: str | None,
        ovms_config: str | None,
        ovms_path_map: Mapping[str, str] | None,
        no_cache_device: str | None = None,
        confirm: bool = False,
        force: bool = False,
    ) -> WarmRequest:
        """The warm request :meth:`warm` and :meth:`install` share, the connection's values filling what is ``None``."""
        cfg = self.config
        ovms = ovms_config or cfg.ovms_config
        chosen_loader = loader or cfg.loader
        chosen_loader_path = loader_path or cfg.loader_path
        return WarmRequest(
            cache_dir=cfg.cache_dir,
            repository=cfg.repository,
            models=tuple(models or ()),
            versions=versions,
            version_numbers=tuple(version_numbers or ()),
            devices=() if ovms else tuple(devices or cfg.devices),
            properties=dict(properties or {}),
            compile_mode=compile_mode,
            cache_mode=cache_mode,
            model_file=model_file,
            serving_config=serving_config or cfg.serving_config,
            encryption_key_file=encryption_key_file,
            no_cache_device=no_cache_device,
            confirm=confirm,
            force=force,
            profile=profile or cfg.profile,
            loader=str(chosen_loader) if chosen_loader else None,
            loader_path=str(chosen_loader_path) if chosen_loader_path else None,
            model_class=self._profile_option("model_class", profile, model_class),
            pipeline=self._profile_option("pipeline", profile, pipeline),
            ovms_config=ovms,
            ovms_path_map=self._path_map(ovms_path_map) if ovms else (),
        )

    def install(
        self,
        *,
        store: str,
        models: Sequence[str] | None = None,
        versions: str | None = None,
        version_numbers: Sequence[int] | None = None,
        devices: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
        compile_mode: str | None = None,
        cache_mode: str | None = None,
        model_file: str | None = None,
        serving_config: str | None = None,
        encryption_key_file: str | None = None,
        profile: str | None = None,
        loader: str | None = None,
        loader_path: str | None = None,
        model_class: str | None = None,
        pipeline: str | None = None,
        ovms_config: str | None = None,
        ovms_path_map: Mapping[str, str] | None = None,
        compile_if_unreachable: bool = False,
        timeout: float | None = None,
    ) -> InstallReport:
        """Install model versions from a blob store on the host, as a warm of them would publish (``ovcache install``).

        For each item a warm would compile, the agent fetches the set stored for the host's hardware class,
        checks it (checksum, class, model fingerprint, model path, model file size and mtime), publishes it
        and proves it with a load in a fresh process; where any check fails it compiles locally and the
        item's ``fallback`` says why. A fallback is not a failure; an unreachable store is (the cache is
        untouched). Arguments left ``None`` take the connection's value where it has one, as for :meth:`warm`.

        :param store: the blob store as the host reaches it (a directory that exists there).
        :param models: the models to install; default every model in the repository.
        :param versions: a version policy (``latest:1``, the default, ``all``, ``specific:1,3``).
        :param version_numbers: exact version numbers to install, instead of ``versions``.
        :param devices: the devices; default the connection's ``devices``, else CPU.
        :param properties: OpenVINO compile properties the server passes.
        :param compile_mode: how the server calls ``compile_model`` (``path`` or ``model``).
        :param cache_mode: OpenVINO ``CACHE_MODE`` (``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``).
        :param model_file: the model file in each version folder, when there are several.
        :param serving_config: a serving config on the host; default the connection's.
        :param encryption_key_file: a cache encryption key file on the host; without one, the key of
            the connection's ``encryption_key_conn_id`` (if set) goes to the agent's standard input.
        :param profile: the serving profile (``openvino``, ``python``, ``optimum`` or ``genai``); default the connection's.
        :param loader: a custom loader that compiles as the serving application does; default the connection's.
        :param loader_path: where that loader is found on the host; default the connection's.
        :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class; default the connection's when
            the profile is the connection's ``optimum``.
        :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``, the agent's default); default
            the connection's when the profile is the connection's ``genai``.
        :param ovms_config: an OVMS ``config.json`` on the host; default the connection's.
        :param ovms_path_map: server path to agent path, for paths in that config; default the connection's.
        :param compile_if_unreachable: a store the host cannot reach makes every item a fallback compiled
            there (each item's ``fallback`` says why) instead of an error; what a release task asks for.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        warm = self._warm_request(
            models=models,
            versions=versions,
            version_numbers=version_numbers,
            devices=devices,
            properties=properties,
            compile_mode=compile_mode,
            cache_mode=cache_mode,
            model_file=model_file,
            serving_config=serving_config,
            encryption_key_file=encryption_key_file,
            profile=profile,
            loader=loader,
            loader_path=loader_path,
            model_class=model_class,
            pipeline=pipeline,
            ovms_config=ovms_config,
            ovms_path_map=ovms_path_map,
        )
        return InstallReport.from_run(self.run_request(InstallRequest(warm, store, compile_if_unreachable), timeout=timeout))

    def store_put(
        self,
        *,
        store: str,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
        timeout: float | None = None,
    ) -> StorePutReport:
        """Put the host's verified managed entries into a blob store, filed under its hardware class (``ovcache store-put``).

        Run on the host that compiled (a builder): an entry that is not whole and current there fails that
        item and is not stored.

        :param store: the blob store as the host reaches it (a directory that exists there).
        :param model: only this model's entries; default every entry in the cache.
        :param version: only this version's.
        :param device: only this device's.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = StorePutRequest(self.config.cache_dir, store, model, version, device)
        return StorePutReport.from_run(self.run_request(request, timeout=timeout))

    def release(
        self,
        *,
        model: str,
        version: int,
        retain: str | None = None,
        devices: Sequence[str] | None = None,
        properties: Mapping[str, Any] | None = None,
        compile_mode: str | None = None,
        cache_mode: str | None = None,
        model_file: str | None = None,
        serving_config: str | None = None,
        encryption_key_file: str | None = None,
        profile: str | None = None,
        loader: str | None = None,
        loader_path: str | None = None,
        model_class: str | None = None,
        pipeline: str | None = None,
        ovms_config: str | None = None,
        ovms_path_map: Mapping[str, str] | None = None,
        wait: float = 0.0,
        force: bool = False,
        store: str | None = None,
        from_store: bool = False,
        timeout: float | None = None,
    ) -> ReleaseReport:
        """Release one model version on the host in one agent run (``ovcache release``).

        The agent checks the version folder, that the devices can cache, warms the version
        (confirmed by a load in a fresh process, as the release DAG's warm task does), verifies it
        with a load check and invalidates what ``retain`` no longer keeps; it stops at the first
        failing step. A failed step does not raise: the report says which step failed and why
        (:attr:`ReleaseReport.failed_step`), and every step's own result is kept. Arguments left
        ``None`` take the connection's value where it has one.

        .. note::
            One agent process and one transport session instead of one per step: the cost a fleet
            of hundreds of hosts pays per release. ``wait`` is for a copy that lags by seconds;
            wait for a slow copy with :class:`~airflow_ovcache.sensors.model_version.OvcacheModelVersionSensor`
            (deferrable) rather than holding a session open.

        :param model: the model released.
        :param version: the version released.
        :param retain: the version policy the invalidate step keeps (``latest:2``); default the OVMS
            config's own version policies (``ovms_config``), else every version.
        :param devices: the devices to check and compile for; default the connection's ``devices``, else CPU.
        :param properties: OpenVINO compile properties the server passes (``{"PERFORMANCE_HINT": "LATENCY"}``).
        :param compile_mode: how the server calls ``compile_model`` (``path`` or ``model``).
        :param cache_mode: OpenVINO ``CACHE_MODE`` (``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``).
        :param model_file: the model file in each version folder, when there are several.
        :param serving_config: a serving config on the host; default the connection's.
        :param encryption_key_file: a cache encryption key file on the host; without one, the key of
            the connection's ``encryption_key_conn_id`` (if set) goes to the agent's standard input.
        :param profile: the serving profile (``openvino``, ``python``, ``optimum`` or ``genai``); default the connection's.
        :param loader: a custom loader that compiles as the serving application does; default the connection's.
        :param loader_path: where that loader is found on the host; default the connection's.
        :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class; default the connection's when
            the profile is the connection's ``optimum``.
        :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``, the agent's default); default
            the connection's when the profile is the connection's ``genai``.
        :param ovms_config: an OVMS ``config.json`` on the host that says what and how to compile;
            default the connection's. With one, ``devices`` are only checked and no compile argument is passed.
        :param ovms_path_map: server path to agent path, for paths in that config; default the connection's.
        :param wait: seconds the agent waits for the version folder to appear (0: it looks once).
        :param force: rebuild the blobs even when they are up to date.
        :param store: a blob store on the host (docs/fleet.md): the warm step puts what it compiled
            there, filed under the host's hardware class, for the other hosts of the class.
        :param from_store: with ``store``, the warm step installs the class's set instead of compiling
            (falling back to a compile, item by item, where a check fails or the store is unreachable).
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        cfg = self.config
        ovms = ovms_config or cfg.ovms_config
        chosen_loader = loader or cfg.loader
        chosen_loader_path = loader_path or cfg.loader_path
        request = ReleaseRequest(
            cache_dir=cfg.cache_dir,
            repository=cfg.repository,
            model=model,
            version=version,
            devices=tuple(devices or cfg.devices),
            properties=dict(properties or {}),
            compile_mode=compile_mode,
            cache_mode=cache_mode,
            model_file=model_file,
            serving_config=serving_config or cfg.serving_config,
            encryption_key_file=encryption_key_file,
            profile=profile or cfg.profile,
            loader=str(chosen_loader) if chosen_loader else None,
            loader_path=str(chosen_loader_path) if chosen_loader_path else None,
            model_class=self._profile_option("model_class", profile, model_class),
            pipeline=self._profile_option("pipeline", profile, pipeline),
            ovms_config=ovms,
            ovms_path_map=self._path_map(ovms_path_map) if ovms else (),
            retain=retain or None,
            wait=wait,
            force=force,
            store=store or None,
            from_store=from_store,
        )
        return ReleaseReport.from_run(self.run_request(request, timeout=timeout))

    def _verify_request(
        self,
        model: str | None,
        version: int | None,
        device: str | None,
        load_check: bool,
        infer_check: bool,
        checksum: str | None,
    ) -> VerifyRequest:
        return VerifyRequest(self.config.cache_dir, model, version, device, load_check, infer_check, checksum)

    def verify(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
        load_check: bool = False,
        infer_check: bool = False,
        checksum: str | None = None,
        timeout: float | None = None,
    ) -> VerifyReport:
        """Check that each managed blob would serve the deployed model (``ovcache verify``).

        :param model: check only this model's blobs.
        :param version: check only this version.
        :param device: check only this device's blobs.
        :param load_check: load each blob with OpenVINO, as the server would.
        :param infer_check: also run one inference on each loaded blob.
        :param checksum: the checksum policy (the agent's ``--checksum``).
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = self._verify_request(model, version, device, load_check, infer_check, checksum)
        return VerifyReport.from_run(self.run_request(request, timeout=timeout))

    async def averify(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        device: str | None = None,
        load_check: bool = False,
        infer_check: bool = False,
        checksum: str | None = None,
        timeout: float | None = None,
    ) -> VerifyReport:
        """:meth:`verify` for triggers, without blocking the event loop.

        :param model: check only this model's blobs.
        :param version: check only this version.
        :param device: check only this device's blobs.
        :param load_check: load each blob with OpenVINO, as the server would.
        :param infer_check: also run one inference on each loaded blob.
        :param checksum: the checksum policy (the agent's ``--checksum``).
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = await asyncio.to_thread(self._verify_request, model, version, device, load_check, infer_check, checksum)
        return VerifyReport.from_run(await self.arun_request(request, timeout=timeout))

    def rewarm(self, *, load_check: bool = True, confirm: bool = True, timeout: float | None = None) -> RewarmReport:
        """Verify the host's cache, rebuild what a warm can fix, verify again (the nightly repair).

        :param load_check: load each blob with OpenVINO while verifying.
        :param confirm: load each rebuilt blob back before reporting it repaired.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = RewarmRequest(self.config.cache_dir, load_check=load_check, confirm=confirm)
        return RewarmReport.from_run(self.run_request(request, timeout=timeout))

    def invalidate(
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
        ovms_path_map: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> InvalidateReport:
        """Remove blobs of retired versions, stale and foreign blobs (``ovcache invalidate``).

        :param models: only these models' blobs; default every model.
        :param versions: the version policy to keep (``latest:2``); without it, the OVMS config's own
            version policies (``ovms_config``), else every version in the repository.
        :param stale: remove blobs of model files that changed.
        :param foreign: remove blobs of another OpenVINO runtime or CPU.
        :param orphans: remove blob files no manifest entry records.
        :param orphan_min_age: seconds an orphan must be old before it is removed.
        :param max_bytes: a size budget for the cache (bytes, or ``"20G"``); the oldest blobs go first.
        :param dry_run: only report what would be removed.
        :param ovms_config: an OVMS ``config.json`` on the host; default the connection's.
        :param ovms_path_map: server path to agent path, for paths in that config; default the connection's.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        ovms = ovms_config or self.config.ovms_config
        request = InvalidateRequest(
            cache_dir=self.config.cache_dir,
            models=tuple(models or ()),
            versions=versions,
            stale=stale,
            foreign=foreign,
            orphans=orphans,
            orphan_min_age=orphan_min_age,
            max_bytes=max_bytes,
            dry_run=dry_run,
            ovms_config=ovms,
            ovms_path_map=self._path_map(ovms_path_map) if ovms else (),
        )
        return InvalidateReport.from_run(self.run_request(request, timeout=timeout))

    def status(self, *, timeout: float | None = None) -> dict[str, Any]:
        """What the cache directory holds (the agent's ``status`` result, as is).

        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        return self.run_request(StatusRequest(self.config.cache_dir), timeout=timeout).result

    def devices(self, devices: Sequence[str] | None = None, *, timeout: float | None = None) -> DevicesReport:
        """Devices on the host, their capabilities and whether they can cache (``EXPORT_IMPORT``).

        :param devices: only these devices; default every device OpenVINO sees on the host.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        return DevicesReport.from_run(self.run_request(DevicesRequest(tuple(devices or ())), timeout=timeout))

    async def adevices(self, devices: Sequence[str] | None = None, *, timeout: float | None = None) -> DevicesReport:
        """:meth:`devices` for triggers, without blocking the event loop.

        :param devices: only these devices; default every device OpenVINO sees on the host.
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        return DevicesReport.from_run(await self.arun_request(DevicesRequest(tuple(devices or ())), timeout=timeout))

    def _models_request(self, repository: str | None, models: Sequence[str] | None, versions: str) -> ModelsRequest:
        return ModelsRequest(repository or self.config.repository, tuple(models or ()), versions)

    def models(
        self,
        *,
        repository: str | None = None,
        models: Sequence[str] | None = None,
        versions: str = "all",
        timeout: float | None = None,
    ) -> ModelsReport:
        """Models and versions in the host's repository (``ovcache models``).

        :param repository: the repository root on the host; default the connection's ``repository``.
        :param models: only these models; default every model.
        :param versions: the version policy to list (``all`` by default).
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        return ModelsReport.from_run(self.run_request(self._models_request(repository, models, versions), timeout=timeout))

    async def amodels(
        self,
        *,
        repository: str | None = None,
        models: Sequence[str] | None = None,
        versions: str = "all",
        timeout: float | None = None,
    ) -> ModelsReport:
        """:meth:`models` for triggers, without blocking the event loop.

        :param repository: the repository root on the host; default the connection's ``repository``.
        :param models: only these models; default every model.
        :param versions: the version policy to list (``all`` by default).
        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
        request = await asyncio.to_thread(self._models_request, repository, models, versions)
        return ModelsReport.from_run(await self.arun_request(request, timeout=timeout))

    def agent_version(self, *, timeout: float | None = None) -> AgentVersion:
        """The agent's version, envelope schema and OpenVINO version on the host.

        :param timeout: seconds the agent may run; default the connection's ``command_timeout``.
        """
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
