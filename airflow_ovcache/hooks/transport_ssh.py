"""SSH transport: run the agent on a remote host through an SSH provider connection.

The SSH provider's ``SSHHook`` (paramiko) opens the session; this module adds
what a fleet needs on top of it:

* host key checking is on, whatever the provider version's default: a host
  must be pinned (``host_key`` on the SSH connection, or the worker's
  ``known_hosts``) unless that connection explicitly sets
  ``no_host_key_check`` (or ``allow_host_key_change``);
* connect errors that may pass (refused, timed out, unreachable, a dropped
  handshake) are retried with exponential backoff; a rejected key or login is
  not, and nothing is retried once the agent has started;
* the agent does not outlive its task: on a command timeout or a task kill
  the hook stops the agent's process group on the host over a second
  session, and the agent runs under ``timeout(1)`` as a backstop for when
  the connection itself is gone (``remote_timeout: false`` on the ovcache
  connection turns both off, for hosts whose login shell is not POSIX).

paramiko is imported only when a connection is made.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import selectors
import shlex
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..core import trace
from ..protocol.location import Location
from .errors import (
    AgentTimeout,
    ConnectionConfigError,
    HostKeyMismatch,
    HostKeyNotPinned,
    OvcacheHookError,
    SSHConnectError,
    SSHLoginRefused,
)
from .transport import LineCollector, LineSink, RawResult

log = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
# The remote timeout(1) fires a little after the local deadline, so the local
# side reports the timeout and the remote side only cleans up.
REMOTE_TIMEOUT_SLACK = 2
REMOTE_KILL_AFTER = 10
PID_MARKER = "ovcache-remote-pgid"
# Stop a remote process group: SIGTERM, then SIGKILL if it is still there after ~5 s.
_KILL_GROUP = "kill -TERM -{pgid} 2>/dev/null; for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -{pgid} 2>/dev/null || exit 0; sleep 0.5; done; kill -KILL -{pgid} 2>/dev/null; true"

_TRANSIENT_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
    errno.ETIMEDOUT,
}
_TRANSIENT_SSH_MESSAGES = (
    "error reading ssh protocol banner",  # sshd dropped us (MaxStartups) or is still starting
    "no existing session",
    "connection reset",
    "unable to connect",
    "timeout opening channel",
)


def is_transient(exc: BaseException) -> bool:
    """True for connect failures worth retrying; False for a rejected key, login or host key.

    The connect loop retries a transient failure with backoff and turns any other into a task failure at
    once: retrying a refused login only delays the error a person has to fix.

    :param exc: what the SSH hook's ``get_conn`` raised.
    """
    import paramiko

    if isinstance(exc, paramiko.AuthenticationException) and "transport shut down or saw EOF" in str(exc):
        return True  # the connection dropped during the login; nothing was refused
    if isinstance(exc, (paramiko.BadHostKeyException, paramiko.AuthenticationException)):
        return False
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return True
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN
    if isinstance(exc, (TimeoutError, socket.timeout, ConnectionError, EOFError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    if isinstance(exc, paramiko.SSHException):
        text = str(exc).lower()
        return any(m in text for m in _TRANSIENT_SSH_MESSAGES)
    return False


def _flag(value: Any) -> bool:
    return str(value).strip().lower() == "true"


class SSHTransport:
    """Run the agent on a host through an SSH provider connection (see the module's docstring).

    :param ssh_conn_id: the SSH provider connection of the host.
    :param agent_command: the agent's command line on the host.
    :param connect_timeout: seconds one connect attempt (and opening a session) may take.
    :param connect_retries: how many times a connect failure that may pass is retried.
    :param retry_backoff: seconds before the first retry; doubled each time, up to a minute, with jitter.
    :param remote_timeout: stop the agent's process group on the host on a timeout or kill, and run
        it under ``timeout(1)``; off for hosts whose login shell is not POSIX.
    :param sleep: how to wait between retries (tests pass a recorder).
    """

    def __init__(
        self,
        ssh_conn_id: str,
        agent_command: Sequence[str],
        *,
        connect_timeout: float = 10.0,
        connect_retries: int = 3,
        retry_backoff: float = 2.0,
        remote_timeout: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not agent_command:
            raise ValueError("agent_command must not be empty")
        self.ssh_conn_id = ssh_conn_id
        self.agent_command = list(agent_command)
        self.connect_timeout = connect_timeout
        self.connect_retries = max(0, int(connect_retries))
        self.retry_backoff = max(0.0, retry_backoff)
        self.remote_timeout = remote_timeout
        self.sleep = sleep
        self.attempts = 0  # connect attempts of the last run, for logs and tests
        self._hook: Any = None
        self._cancel: threading.Event | None = None

    # -- the SSH provider's hook --------------------------------------------------------------
    @trace.traced("ssh.hook")
    def ssh_hook(self, target: Location) -> Any:
        """The SSH provider's hook for this connection, with host key checking forced on (built once).

        :param target: what a failure to read the SSH connection is about.
        """
        if self._hook is not None:
            return self._hook
        import inspect

        from airflow.providers.ssh.hooks.ssh import SSHHook

        try:
            conn = SSHHook.get_connection(self.ssh_conn_id)
        except Exception as exc:  # noqa: BLE001 - AirflowNotFoundException and friends
            raise ConnectionConfigError(
                target,
                f"SSH connection {self.ssh_conn_id!r} cannot be read: {exc}",
                "create it (conn type ssh) or fix ssh_conn_id",
            ) from exc
        extra = conn.extra_dejson or {}
        opted_out = _flag(extra.get("no_host_key_check")) or _flag(extra.get("allow_host_key_change"))
        params = inspect.signature(SSHHook.__init__).parameters
        kwargs: dict[str, Any] = {"ssh_conn_id": self.ssh_conn_id, "conn_timeout": self.connect_timeout, "cmd_timeout": None}
        if "conn_retry_attempts" in params:
            kwargs["conn_retry_attempts"] = 1  # we retry ourselves, and only what is worth retrying
        try:
            hook = SSHHook(**kwargs)
        except Exception as exc:  # noqa: BLE001 - the provider raises ValueError/AirflowException for bad extras
            raise ConnectionConfigError(target, f"SSH connection {self.ssh_conn_id!r} is not usable: {exc}") from exc
        if not opted_out:
            # Older SSH providers default no_host_key_check to True; a fleet tool must not.
            hook.no_host_key_check = False
        else:
            log.warning("SSH connection %s opts out of host key checking; the host's identity is not verified", self.ssh_conn_id)
        self._hook = hook
        return hook

    def address(self) -> str:
        """``host:port`` once the connection has been read, else the connection's id (for messages)."""
        hook = self._hook
        if hook is None:
            return self.ssh_conn_id
        port = getattr(hook, "port", None) or 22
        return f"{hook.remote_host}:{port}"

    def remote_host(self, target: Location) -> str | None:
        """The SSH connection's host, read from the connection (no session is opened).

        :param target: what a failure to read the SSH connection is about.
        """
        host = self.ssh_hook(target).remote_host
        return str(host) if host else None

    def files(self, target: Location) -> Any:
        """The host's files over SFTP, on a session opened (with the same retries) as for an agent run.

        :param target: what a failure to connect is about.
        """
        from .store_relay import SftpFiles

        return SftpFiles(self._connect(target).open_sftp())

    # -- connect ------------------------------------------------------------------------------
    @trace.traced("ssh.connect")
    def _connect(self, target: Location) -> Any:
        hook = self.ssh_hook(target)
        attempts = self.connect_retries + 1
        self.attempts = 0
        for attempt in range(1, attempts + 1):
            self.attempts = attempt
            try:
                return hook.get_conn()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised as a task failure
                hook.client = None
                if not is_transient(exc):
                    raise self._permanent(exc, target) from exc
                if attempt == attempts:
                    raise SSHConnectError(
                        target, f"cannot connect to {self.address()} after {attempts} attempt(s): {_describe(exc)}"
                    ) from exc
                delay = min(self.retry_backoff * (2 ** (attempt - 1)), MAX_BACKOFF) * (1.0 + 0.25 * random.random())
                log.warning(
                    "%s: connecting to %s failed (%s); retry %d of %d in %.1fs",
                    target.host,
                    self.address(),
                    _describe(exc),
                    attempt,
                    attempts - 1,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")

    def _permanent(self, exc: BaseException, target: Location) -> OvcacheHookError:
        import paramiko

        addr = self.address()
        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyMismatch(
                target,
                f"{addr} presented host key {exc.key.get_name()} {exc.key.fingerprint}, but SSH connection {self.ssh_conn_id} pins {exc.expected_key.fingerprint}",
            )
        if isinstance(exc, paramiko.AuthenticationException):
            user = getattr(self._hook, "username", None) or "?"
            return SSHLoginRefused(target, f"{addr} refused the login of user {user}: {_describe(exc)}")
        if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
            host = getattr(self._hook, "remote_host", "HOST")
            port = getattr(self._hook, "port", 22) or 22
            return HostKeyNotPinned(
                target,
                f"the host key of {addr} is not pinned, so the connection is refused (SSH connection {self.ssh_conn_id} has no host_key and the host is not in the worker's known_hosts)",
                f'pin it: add its public key to the SSH connection\'s extra as "host_key": "<type> <base64>" (ssh-keyscan -p {port} {host} prints it), '
                'or add it to ~/.ssh/known_hosts on every worker; to skip the check at your own risk set "no_host_key_check": true on the SSH connection',
            )
        return SSHConnectError(target, f"cannot connect to {addr}: {_describe(exc)}", hint="")

    # -- run ----------------------------------------------------------------------------------
    def remote_command(self, args: Sequence[str], timeout: float | None) -> str:
        """The command line the host's shell runs.

        :param args: the agent's arguments.
        :param timeout: the run's time limit in seconds, for the remote ``timeout(1)``; ``None`` for none.

        With ``remote_timeout`` (the default) the shell first reports its pid, which is
        also the process group of everything the agent starts, then execs the agent
        under ``timeout(1)``: a timeout or a task kill can then stop the remote
        agent and its children, not just drop the session.
        """
        command = shlex.join([*self.agent_command, *args])
        if not self.remote_timeout:
            return command
        if timeout:
            command = f"timeout -k {REMOTE_KILL_AFTER} {int(timeout) + REMOTE_TIMEOUT_SLACK} {command}"
        return f"echo {PID_MARKER} $$ >&2; exec {command}"

    def run(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """See :meth:`.transport.Transport.run`.

        :param args: the agent's arguments, after its own command.
        :param target: what the run is about, for connect and timeout failures.
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line as it arrives.
        :param stdin: bytes sent down the session's stdin (a secret); ``None`` for none.
        """
        return self._run(args, target, timeout, on_line, None, stdin)

    async def arun(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """See :meth:`.transport.Transport.arun`; the session runs in a thread, cancelling closes it.

        :param args: the agent's arguments, after its own command.
        :param target: what the run is about, for connect and timeout failures.
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line as it arrives.
        :param stdin: bytes sent down the session's stdin; ``None`` for none.
        """
        cancel = threading.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(self._run, args, target, timeout, on_line, cancel, stdin))
        try:
            return await asyncio.shield(worker)
        except asyncio.CancelledError:
            # The thread cannot be cancelled; tell it to close the session, and let it finish.
            cancel.set()
            raise

    def kill(self) -> None:
        """Stop a running agent: the session's reader stops the remote process group and closes."""
        if self._cancel is not None:
            self._cancel.set()

    def _run(
        self,
        args: Sequence[str],
        target: Location,
        timeout: float | None,
        on_line: LineSink,
        cancel: threading.Event | None,
        stdin: bytes | None = None,
    ) -> RawResult:
        self._cancel = cancel or threading.Event()
        client = self._connect(target)
        started = time.monotonic()
        command = self.remote_command(args, timeout)
        log.info("%s: running on %s: %s", target.host, self.address(), command)
        try:
            channel = client.get_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(command)
            if stdin is not None:
                # A secret (the cache key) goes down the session's stdin, never into the command line.
                channel.sendall(stdin)
            channel.shutdown_write()
            return self._read(client, channel, target, timeout, on_line, started, self._cancel)
        except OvcacheHookError:
            raise
        except Exception as exc:  # noqa: BLE001 - a session that broke after connecting
            raise SSHConnectError(
                target, f"the SSH session to {self.address()} broke while the agent ran: {_describe(exc)}", "rerun the task"
            ) from exc
        finally:
            client.close()
            self._hook.client = None

    def _stop_remote(self, client: Any, pgid: int | None, target: Location) -> None:
        """Stop the agent's process group on the host, over a second session of the same connection."""
        if pgid is None:
            return
        try:
            channel = client.get_transport().open_session(timeout=self.connect_timeout)
            channel.exec_command(_KILL_GROUP.format(pgid=pgid))
            deadline = time.monotonic() + 15
            while not channel.exit_status_ready() and time.monotonic() < deadline:
                time.sleep(0.05)
            channel.close()
            log.info("%s: stopped the agent's process group %d on %s", target.host, pgid, self.address())
        except Exception as exc:  # noqa: BLE001 - best effort; timeout(1) on the host is the backstop
            log.warning("%s: could not stop the agent on %s (process group %s): %s", target.host, self.address(), pgid, exc)

    @trace.traced("ssh.session")
    def _read(
        self,
        client: Any,
        channel: Any,
        target: Location,
        timeout: float | None,
        on_line: LineSink,
        started: float,
        cancel: threading.Event,
    ) -> RawResult:
        remote: dict[str, int] = {}

        def sink(line: str) -> None:
            if line.startswith(PID_MARKER) and "pgid" not in remote:
                remote["pgid"] = int(line.split()[1])
            else:
                on_line(line)

        collector = LineCollector(sink)
        chunks: list[bytes] = []
        deadline = None if timeout is None else started + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(channel, selectors.EVENT_READ)
            while True:
                while channel.recv_ready():
                    chunks.append(channel.recv(65536))
                while channel.recv_stderr_ready():
                    collector.feed(channel.recv_stderr(65536))
                if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                    break
                if channel.closed or not channel.get_transport().is_active():
                    break
                if cancel.is_set():
                    self._stop_remote(client, remote.get("pgid"), target)
                    channel.close()
                    raise AgentTimeout(
                        target,
                        "the run was stopped (task killed or trigger cancelled); the agent on the host was stopped too",
                        hint="",
                    )
                if deadline is not None and time.monotonic() > deadline:
                    self._stop_remote(client, remote.get("pgid"), target)
                    channel.close()
                    collector.close()
                    raise AgentTimeout(
                        target,
                        f"the agent did not finish within {timeout:g}s and was stopped on the host (last lines: {' | '.join(list(collector.tail)[-3:]) or 'none'})",
                    )
                selector.select(0.25)
        while channel.recv_ready():
            chunks.append(channel.recv(65536))
        while channel.recv_stderr_ready():
            collector.feed(channel.recv_stderr(65536))
        collector.close()
        stdout = b"".join(chunks).decode("utf-8", "replace")
        if channel.exit_status_ready():
            status = channel.recv_exit_status()
            if status == -1:
                # paramiko's "no exit status": the session ended without one.
                if not channel.get_transport().is_active():
                    raise SSHConnectError(target, _lost(self.address()), "rerun the task")
                return RawResult(None, stdout, list(collector.tail), signal=0)
            if status == 124 and self.remote_timeout and timeout:
                raise AgentTimeout(target, f"the agent did not finish within {timeout:g}s and timeout(1) stopped it on the host")
            if status >= 128 + 1 and status <= 128 + 64 and status != 130:
                return RawResult(None, stdout, list(collector.tail), signal=status - 128)
            return RawResult(status, stdout, list(collector.tail))
        if not channel.get_transport().is_active():
            raise SSHConnectError(target, _lost(self.address()), "rerun the task")
        # sshd closed the session without an exit status: the command died by a signal.
        return RawResult(None, stdout, list(collector.tail), signal=0)


def _lost(address: str) -> str:
    return (
        f"the SSH connection to {address} was lost while the agent ran; the agent may finish on the host "
        "(each step it takes is whole), and a rerun reports where it got to"
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text
