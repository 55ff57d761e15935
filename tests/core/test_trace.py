"""The tracing hook: nothing recorded while off, nested timed spans while on, exceptions untouched."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

from airflow_ovcache.core import trace


@pytest.fixture(autouse=True)
def _off_afterwards() -> Iterator[None]:
    trace.disable()
    yield
    trace.disable()


def test_off_records_nothing_and_hands_out_one_shared_context() -> None:
    first = trace.span("a", model="m")
    second = trace.span("b")
    assert first is second is trace.OFF
    with first as value:
        assert value is None

    @trace.traced("c")
    def add(x: int) -> int:
        return x + 1

    assert add(1) == 2
    assert trace.spans() == []


def test_on_records_nested_spans_with_parents_durations_and_attributes() -> None:
    trace.enable()
    with trace.span("outer", model="m", version=1):
        time.sleep(0.01)
        with trace.span("inner"):
            time.sleep(0.01)
    outer, inner = trace.spans()
    assert (outer.name, inner.name) == ("outer", "inner")
    assert outer.attrs == {"model": "m", "version": 1}
    assert outer.parent is None and inner.parent == 0
    assert inner.duration is not None and inner.duration >= 0.01
    assert outer.duration is not None and outer.duration >= inner.duration + 0.01
    assert outer.start <= inner.start and inner.end <= outer.end
    assert outer.memory_kb is None


def test_exceptions_propagate_and_close_the_span() -> None:
    trace.enable()

    @trace.traced("fails")
    def fails() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError), trace.span("outer"):
        fails()
    outer, failed = trace.spans()
    assert failed.error == "KeyError" and failed.duration is not None and failed.parent == 0
    assert outer.error == "KeyError" and outer.duration is not None
    with trace.span("after"):
        pass
    assert trace.spans()[-1].parent is None  # the stack was unwound


def test_context_manager_setup_and_teardown_are_two_spans() -> None:
    @trace.traced_cm("cm.enter", "cm.exit")
    @contextlib.contextmanager
    def managed() -> Iterator[str]:
        time.sleep(0.005)
        yield "value"
        time.sleep(0.005)

    with managed() as off_value:
        assert off_value == "value"
    trace.enable()
    with managed() as value, trace.span("body"):
        assert value == "value"
    assert [s.name for s in trace.spans()] == ["cm.enter", "body", "cm.exit"]
    assert all(s.parent is None for s in trace.spans())
    assert all((s.duration or 0) >= 0.005 for s in trace.spans() if s.name != "body")


def test_memory_and_threads_are_recorded_when_asked() -> None:
    trace.enable(memory=True)

    def work() -> None:
        with trace.span("thread"):
            pass

    thread = threading.Thread(target=work)
    with trace.span("main"):
        thread.start()
        thread.join()
    by_name = {s.name: s for s in trace.spans()}
    assert by_name["thread"].parent is None  # parents are per thread
    assert by_name["thread"].thread != by_name["main"].thread
    assert by_name["main"].memory_kb is not None and by_name["main"].memory_end_kb is not None
    trace.clear()
    assert trace.spans() == []


def test_only_the_named_spans_are_recorded_when_a_filter_is_given() -> None:
    trace.enable(only=["kept"])
    with trace.span("left out") as left_out, trace.span("kept"):
        assert left_out is None
    (kept,) = trace.spans()
    assert kept.name == "kept" and kept.parent is None
