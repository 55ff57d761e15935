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
from typing import Protocol

from ..protocol.location import Location

LineSink = Callable[[str], None]
STDERR_TAIL = 40


@dataclass
class RawResult:
    exit_code: int | None  # None when the agent was ended by a signal
    stdout: str
    stderr_tail: list[str] = field(default_factory=list)
    signal: int | None = None
    seconds: float = 0.0


class Transport(Protocol):
    kind: str

    def run(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult: ...

    async def arun(
        self, args: Sequence[str], *, target: Location, timeout: float | None, on_line: LineSink, stdin: bytes | None = None
    ) -> RawResult: ...

    def kill(self) -> None: ...


class LineCollector:
    """Splits a byte stream into lines, hands each to a sink and keeps the last few."""

    def __init__(self, sink: LineSink, keep: int = STDERR_TAIL) -> None:
        self.sink = sink
        self.tail: deque[str] = deque(maxlen=keep)
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self._emit(line)

    def close(self) -> None:
        if self._partial:
            self._emit(self._partial)
            self._partial = b""

    def _emit(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        if line.strip():
            self.tail.append(line)
            self.sink(line)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
