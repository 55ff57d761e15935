"""Timed spans around the agent's steps, recorded only in a process that switched them on.

The benchmarks need the time (and sometimes the memory) of single steps inside a
warm, a verify or one agent command. They used to get it by replacing the core's
module attributes and private methods, so renaming a private method broke them.
Instead the core names its steps here, and a benchmark calls :func:`enable` in its
own process and reads :func:`spans` afterwards.

Off is the normal state and costs almost nothing: :func:`span` returns one shared
no-op context, and a function decorated with :func:`traced` or :func:`traced_cm`
makes one extra call and one ``is None`` test (``docs/benchmarks.md`` gives the
measured figure). Nothing is ever recorded unless :func:`enable` was called, and
nothing here reads the environment or imports more than the standard library.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass
class Span:
    """One timed step.

    :param name: the step's dotted name, e.g. ``"warm.publish.rename"``.
    :param start: ``time.perf_counter()`` when it began, in seconds.
    :param duration: how long it took, in seconds (``None`` while it is still open).
    :param attrs: what the call site attached (for example the model and version).
    :param parent: index in :func:`spans` of the span that encloses this one in the same
        thread, or ``None`` at the top level.
    :param thread: ``threading.get_ident()`` of the thread it ran in.
    :param error: the exception's type name if the step raised, else ``None``.
    :param memory_kb: ``(VmRSS, VmHWM)`` in KiB at the start, if memory was asked for.
    :param memory_end_kb: the same at the end.
    """

    name: str
    start: float
    duration: float | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    parent: int | None = None
    thread: int = 0
    error: str | None = None
    memory_kb: tuple[int, int] | None = None
    memory_end_kb: tuple[int, int] | None = None

    @property
    def end(self) -> float:
        """When the span closed (its start if it is still open)."""
        return self.start + (self.duration or 0.0)


def memory_kb() -> tuple[int, int]:
    """This process's (VmRSS, VmHWM) in KiB, from ``/proc/self/status`` (zeros where there is none)."""
    rss = hwm = 0
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


class _Recorder:
    """The spans of this process since :func:`enable`, with each thread's stack of open spans."""

    def __init__(self, only: frozenset[str] | None, memory: bool) -> None:
        self.only = only
        self.memory = memory
        self.spans: list[Span] = []
        self.local = threading.local()
        self.lock = threading.Lock()  # threads record side by side; a span's index must be its own

    def open(self, name: str, attrs: dict[str, Any]) -> AbstractContextManager[Span | None]:
        """A recording span, or the no-op one for a name this recorder was told to leave out."""
        if self.only is not None and name not in self.only:
            return OFF
        return _On(self, name, attrs)


_recorder: _Recorder | None = None


class _Off:
    """The one context every span is while tracing is off: it records nothing."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


OFF = _Off()


class _On:
    """A span being recorded: appended when it opens (so children know their parent), timed when it closes."""

    __slots__ = ("_recorder", "_name", "_attrs", "_record")

    def __init__(self, recorder: _Recorder, name: str, attrs: dict[str, Any]) -> None:
        self._recorder, self._name, self._attrs = recorder, name, attrs

    def __enter__(self) -> Span:
        rec = self._recorder
        stack: list[int] = rec.local.__dict__.setdefault("stack", [])
        record = Span(
            self._name,
            0.0,
            attrs=self._attrs,
            parent=stack[-1] if stack else None,
            thread=threading.get_ident(),
            memory_kb=memory_kb() if rec.memory else None,
        )
        with rec.lock:
            rec.spans.append(record)
            stack.append(len(rec.spans) - 1)
        self._record = record
        record.start = time.perf_counter()
        return record

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        end = time.perf_counter()
        rec, record = self._recorder, self._record
        record.duration = end - record.start
        if exc_type is not None:
            record.error = exc_type.__name__
        if rec.memory:
            record.memory_end_kb = memory_kb()
        rec.local.stack.pop()


def span(name: str, **attrs: Any) -> AbstractContextManager[Span | None]:
    """A context that times the block it encloses; while tracing is off, the shared no-op :data:`OFF`.

    Exceptions pass through; the span is closed and names the exception's type.

    :param name: the step's dotted name.
    :param attrs: plain values to keep with the span (model, version, device...).
    """
    rec = _recorder
    if rec is None:
        return OFF
    return rec.open(name, attrs)


def traced(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function or method so that each call is one span (one line at the definition).

    :param name: the step's dotted name.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            rec = _recorder
            if rec is None:
                return func(*args, **kwargs)
            with rec.open(name, {}):
                return func(*args, **kwargs)

        return call

    return decorate


class _Phased(AbstractContextManager[T]):
    """A context manager whose set-up and tear-down are timed as two spans (the body is the caller's)."""

    def __init__(self, recorder: _Recorder, enter: str, leave: str, make: Callable[[], AbstractContextManager[T]]) -> None:
        self._recorder, self._enter, self._leave, self._make = recorder, enter, leave, make
        self._inner: AbstractContextManager[T] | None = None

    def __enter__(self) -> T:
        with self._recorder.open(self._enter, {}):
            self._inner = self._make()
            return self._inner.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool | None:
        assert self._inner is not None
        with self._recorder.open(self._leave, {}):
            return self._inner.__exit__(exc_type, exc, tb)


def traced_cm(
    enter: str, leave: str
) -> Callable[[Callable[P, AbstractContextManager[T]]], Callable[P, AbstractContextManager[T]]]:
    """Decorate a function returning a context manager: its set-up and its tear-down are each one span.

    Put it above ``@contextlib.contextmanager``. The set-up span includes the call itself.

    :param enter: the name of the set-up span (e.g. ``"cache.entry_lock.take"``).
    :param leave: the name of the tear-down span (e.g. ``"cache.entry_lock.release"``).
    """

    def decorate(func: Callable[P, AbstractContextManager[T]]) -> Callable[P, AbstractContextManager[T]]:
        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> AbstractContextManager[T]:
            rec = _recorder
            if rec is None:
                return func(*args, **kwargs)
            return _Phased(rec, enter, leave, lambda: func(*args, **kwargs))

        return call

    return decorate


def enable(only: Collection[str] | None = None, memory: bool = False) -> None:
    """Start recording spans in this process, forgetting any recorded before.

    :param only: record just these span names (the others stay no-ops), so that a memory
        or time profile of thousands of entries is not skewed by thousands of records;
        ``None`` records every span.
    :param memory: also read ``VmRSS``/``VmHWM`` at each recorded span's start and end
        (a read of ``/proc/self/status`` each time, so only for memory profiles).
    """
    global _recorder
    _recorder = _Recorder(frozenset(only) if only is not None else None, memory)


def disable() -> None:
    """Stop recording and forget what was recorded; spans are no-ops again."""
    global _recorder
    _recorder = None


def spans() -> list[Span]:
    """The spans recorded since :func:`enable`, in the order they opened (empty while off)."""
    rec = _recorder
    return list(rec.spans) if rec is not None else []


def clear() -> None:
    """Forget the spans recorded so far and keep recording (a benchmark's next repeat starts empty).

    Call it with no span open: the indices of open spans would no longer be valid.
    """
    rec = _recorder
    if rec is not None:
        rec.spans.clear()
