"""Local transport: the worker is the target host; the agent runs as a child process.

The child gets its own session (and so its own process group), which is what
makes it safe: an OpenVINO crash ends the child, not the worker, and a
timeout or a task kill stops the whole group (the agent and anything it
started) with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from ..core import trace
from ..protocol.location import Location
from .errors import AgentTimeout
from .transport import LineCollector, LineSink, RawResult

KILL_GRACE = 5.0
AIRFLOW_SECRET_PREFIXES = ("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AIRFLOW__")
# After the agent exits, how long its output pipes may stay open (a straggler
# that inherited them) before the rest of its process group is killed.
DRAIN_GRACE = 2.0


def _pump(stream: IO[bytes], sink: Callable[[bytes], None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for chunk in iter(lambda: stream.read1(65536), b""):  # type: ignore[attr-defined]
            sink(chunk)


def _signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class LocalTransport:
    """Run the agent as a child process of the worker, in its own session.

    :param agent_command: the agent's command line (``["ovcache"]``, or a venv's path to it).
    """

    def __init__(self, agent_command: Sequence[str]) -> None:
        if not agent_command:
            raise ValueError("agent_command must not be empty")
        self.agent_command = list(agent_command)
        self._pid: int | None = None

    def remote_host(self, target: Location) -> str | None:
        """None: the host is the worker itself, named by its host name.

        :param target: unused; the protocol's signature.
        """
        return None

    def files(self, target: Location) -> Any:
        """The worker's own files: a local host is the worker.

        :param target: unused; the protocol's signature.
        """
        from .store_relay import LocalFiles

        return LocalFiles()

    # -- sync ---------------------------------------------------------------------------------
    @trace.traced("local.run")
    def run(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """Start the agent in its own session and wait for it; see :meth:`.transport.Transport.run`.

        The agent gets the worker's environment without Airflow's secrets. On a timeout, or when the
        task itself is killed, the whole process group gets SIGTERM, then SIGKILL after
        :data:`KILL_GRACE` seconds, so that no compile outlives the task. A program that cannot be
        started comes back as a result, not an exception.

        :param args: the agent's arguments, after :attr:`agent_command`.
        :param target: what the run is about, named in the timeout error.
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line (the agent's progress) as it arrives.
        :param stdin: bytes written to the agent's standard input (a secret); ``None`` gives it none.
        """
        argv = [*self.agent_command, *args]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                env=self._environment(),
            )
        except OSError as exc:
            return _not_started(argv[0], exc)
        self._pid = proc.pid
        if stdin is not None:
            _feed(proc, stdin)
        collector = LineCollector(on_line)
        chunks: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, chunks.append), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, collector.feed), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._stop_group(proc)
            _join(pumps, DRAIN_GRACE)
            collector.close()
            raise _timed_out(target, timeout, collector) from None
        except BaseException:
            # A task kill or execution_timeout lands here: the agent must not outlive the task.
            self._stop_group(proc)
            raise
        finally:
            self._pid = None
        if not _join(pumps, DRAIN_GRACE):
            _signal_group(proc.pid, signal.SIGKILL)
            _join(pumps, DRAIN_GRACE)
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        collector.close()
        return _result(proc.returncode, b"".join(chunks), collector)

    def _stop_group(self, proc: subprocess.Popen[bytes]) -> None:
        if not _signal_group(proc.pid, signal.SIGTERM):
            return
        try:
            proc.wait(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_GRACE)

    # -- async --------------------------------------------------------------------------------
    async def arun(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """Start the agent in its own session and wait for it; see :meth:`.transport.Transport.arun`.

        The agent gets the worker's environment without Airflow's secrets. On a timeout, or when the
        task itself is killed (the coroutine cancelled), the whole process group gets SIGTERM, then SIGKILL after
        :data:`KILL_GRACE` seconds, so that no compile outlives the task. A program that cannot be
        started comes back as a result, not an exception.

        :param args: the agent's arguments, after :attr:`agent_command`.
        :param target: what the run is about, named in the timeout error.
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line (the agent's progress) as it arrives.
        :param stdin: bytes written to the agent's standard input (a secret); ``None`` gives it none.
        """
        argv = [*self.agent_command, *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=self._environment(),
            )
        except OSError as exc:
            return _not_started(argv[0], exc)
        self._pid = proc.pid
        if stdin is not None and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(stdin)
                await proc.stdin.drain()
            proc.stdin.close()
        collector = LineCollector(on_line)
        chunks: list[bytes] = []

        async def pump(stream: Any, sink: Callable[[bytes], None]) -> None:
            while chunk := await stream.read(65536):
                sink(chunk)

        readers = asyncio.gather(pump(proc.stdout, chunks.append), pump(proc.stderr, collector.feed))
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except asyncio.TimeoutError:
            await self._astop_group(proc)
            readers.cancel()
            collector.close()
            raise _timed_out(target, timeout, collector) from None
        except BaseException:
            await asyncio.shield(self._astop_group(proc))
            readers.cancel()
            raise
        finally:
            self._pid = None
        try:
            await asyncio.wait_for(asyncio.shield(readers), DRAIN_GRACE)
        except asyncio.TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(readers, DRAIN_GRACE)
        collector.close()
        return _result(proc.returncode, b"".join(chunks), collector)

    async def _astop_group(self, proc: asyncio.subprocess.Process) -> None:
        if not _signal_group(proc.pid, signal.SIGTERM):
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)

    # -- shared -------------------------------------------------------------------------------
    def kill(self) -> None:
        """Stop a running agent and its process group (from ``on_kill``)."""
        pid = self._pid
        if pid is not None:
            _signal_group(pid, signal.SIGTERM)

    def _environment(self) -> dict[str, str]:
        # The agent needs none of Airflow's secrets: connections and variables given as
        # environment variables (a cache key among them), or configuration such as the
        # metadata database URL and the fernet key. It does not inherit them.
        env = {k: v for k, v in os.environ.items() if not k.startswith(AIRFLOW_SECRET_PREFIXES)}
        # Progress lines must reach the task log as they happen.
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """Write a small secret to the agent's stdin through a pipe, then close it (EOF)."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # the agent did not wait for it; its exit says why
        proc.stdin.write(data)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()


def _join(threads: list[threading.Thread], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _not_started(program: str, exc: OSError) -> RawResult:
    # The shell's conventions, so "not installed" reads the same locally and over SSH.
    code = 127 if isinstance(exc, FileNotFoundError) else 126
    return RawResult(code, "", [f"{program}: {exc.strerror or exc}"])


def _result(returncode: int | None, stdout: bytes, collector: LineCollector) -> RawResult:
    text = stdout.decode("utf-8", "replace")
    if returncode is not None and returncode < 0:
        return RawResult(None, text, list(collector.tail), signal=-returncode)
    return RawResult(returncode, text, list(collector.tail))


def _timed_out(target: Location, timeout: float | None, collector: LineCollector) -> AgentTimeout:
    """The error for an agent stopped at its deadline, with its last stderr lines (the sync and async runs share it)."""
    last = " | ".join(list(collector.tail)[-3:]) or "none"
    return AgentTimeout(
        target, f"the agent did not finish within {timeout or 0:g}s and was stopped with its process group (last lines: {last})"
    )
