"""What every transport gives back, and the small pieces they share.

A transport runs ``<agent command> <args>`` on one host, optionally writing
``stdin`` to the agent's standard input (how a secret such as the cache
encryption key reaches it without appearing in a command line or an
environment), and returns the raw outcome: exit status (or the signal that ended the agent), stdout, and the
last stderr lines. Reading the envelope is the hook's job, so the two
transports stay interchangeable.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol.location import Location

LineSink = Callable[[str], None]
"""Where a transport sends each line the agent writes on stderr."""
STDERR_TAIL = 40


@dataclass
class RawResult:
    """How one agent run ended, before the hook reads its envelope.

    :param exit_code: the agent's exit status; ``None`` when a signal ended it.
    :param stdout: everything the agent wrote on stdout (the JSON envelope).
    :param stderr_tail: the last lines the agent wrote on stderr, for failure messages.
    :param signal: the signal that ended the agent, when known (0: ended by one, which is unknown).
    """

    exit_code: int | None
    stdout: str
    stderr_tail: list[str] = field(default_factory=list)
    signal: int | None = None


class Transport(Protocol):
    """How the hook reaches a host: a local subprocess (:mod:`.transport_local`) or SSH (:mod:`.transport_ssh`)."""

    def run(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """Run the agent with ``args`` and wait for it; a timeout stops it (and what it started).

        :param args: the agent's arguments, after its own command.
        :param target: what the run is about, for the transport's own failures (connect, timeout).
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line (the agent's progress) as it arrives.
        :param stdin: bytes for the agent's standard input (a secret); ``None`` for none.
        """
        ...

    async def arun(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult:
        """:meth:`run` without blocking the event loop; cancelling it stops the agent.

        :param args: the agent's arguments, after its own command.
        :param target: what the run is about, for the transport's own failures.
        :param timeout: seconds the agent may run; ``None`` for no limit.
        :param on_line: called with each stderr line as it arrives.
        :param stdin: bytes for the agent's standard input; ``None`` for none.
        """
        ...

    def kill(self) -> None:
        """Stop the agent this transport is running, if any (a task kill)."""
        ...

    def remote_host(self, target: Location) -> str | None:
        """The host's address as the transport knows it before any run (SSH: the connection's host), or ``None``.

        :param target: what a failure to read the transport's own connection is about.
        """
        ...

    def files(self, target: Location) -> Any:
        """The host's files, for moving blob-store sets (:mod:`.store_relay`): SFTP over SSH, plain files locally.

        :param target: what a failure to connect is about.
        """
        ...


class LineCollector:
    """Splits a byte stream into lines, hands each to a sink and keeps the last few.

    :param sink: called with each non-blank line, decoded (invalid UTF-8 replaced).
    :param keep: how many of the last lines :attr:`tail` keeps.
    """

    def __init__(self, sink: LineSink, keep: int = STDERR_TAIL) -> None:
        self.sink = sink
        self.tail: deque[str] = deque(maxlen=keep)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream; each complete line goes to the sink.

        :param data: the bytes read.
        """
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        """The stream ended: a last line without a newline goes to the sink too."""
        if self._partial:
            self._emit(self._partial)
            self._partial = b""

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line.strip():
            self.tail.append(line)
            self.sink(line)


def signal_name(number: int) -> str:
    """``SIGKILL`` for 9; ``signal N`` for a number that is no signal here.

    :param number: the signal's number.
    """
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
