"""Triggers driven with asyncio against the real agent: they fire, time out, and report errors."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.errors import AgentNotInstalled
from airflow_ovcache.hooks.ovcache import OvcacheHook
from airflow_ovcache.triggers.blob import OvcacheBlobTrigger
from airflow_ovcache.triggers.device import OvcacheDeviceTrigger
from airflow_ovcache.triggers.model_version import OvcacheModelVersionTrigger
from airflow_ovcache.triggers.new_version import STATE_KEY, OvcacheNewVersionTrigger


def _roundtrip(trigger: Any) -> None:
    from airflow._shared.module_loading import import_string

    classpath, kwargs = trigger.serialize()
    again = import_string(classpath)(**kwargs)
    assert type(again) is type(trigger)
    assert again.serialize() == (classpath, kwargs)


async def _first_event(trigger: Any, limit: float = 60.0) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(first(), limit)


def test_serialize_round_trips() -> None:
    _roundtrip(OvcacheBlobTrigger(ovcache_conn_id="c", model="m", version=3, devices=["CPU", "GPU"], load_check=True, timeout=30))
    _roundtrip(OvcacheDeviceTrigger(ovcache_conn_id="c", device="GPU.1", fail_when_cannot_cache=False, poke_interval=2))
    _roundtrip(OvcacheModelVersionTrigger(ovcache_conn_id="c", model="m", newer_than=4, repository="/srv/models", cache_dir="/x"))
    _roundtrip(OvcacheNewVersionTrigger(ovcache_conn_id="c", repository="/srv/models", repository_name="prod", models=["m"]))


def test_blob_trigger_fires_times_out_and_errors(
    airflow_db: Path, local_hosts: dict[str, Path], ovcache_conn, cache_dir: Path
) -> None:
    OvcacheHook("ovc_host_a").warm(models=["mlp"], version_numbers=[2])
    fired = asyncio.run(_first_event(OvcacheBlobTrigger(ovcache_conn_id="ovc_host_a", model="mlp", version=2, devices=["CPU"])))
    assert fired["status"] == "success" and fired["value"]["devices"] == {"CPU": "ok"}

    # version 1 was never warmed on host b (whose cache does not even exist yet)
    waited = asyncio.run(
        _first_event(OvcacheBlobTrigger(ovcache_conn_id="ovc_host_b", model="mlp", version=1, poke_interval=0.2, timeout=1))
    )
    assert waited["status"] == "timeout"
    assert "still not met after 1s" in waited["message"] and "mlp@1" in waited["message"]

    ovcache_conn("ovc_broken", host="infer-09", cache_dir=cache_dir, agent_command="/opt/missing/ovcache")
    failed = asyncio.run(_first_event(OvcacheBlobTrigger(ovcache_conn_id="ovc_broken", model="mlp", version=1)))
    assert failed["status"] == "error"
    assert (
        failed["message"].startswith("host infer-09, model mlp, version 1: ")
        and "pip install airflow-ovcache" in failed["message"]
    )


def test_blob_trigger_fires_when_the_blob_lands(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(
            _first_event(OvcacheBlobTrigger(ovcache_conn_id="ovc_host_a", model="tiny", version=1, poke_interval=0.2, timeout=60))
        )
        await asyncio.sleep(0.8)
        assert not waiting.done()
        await asyncio.to_thread(OvcacheHook("ovc_host_a").warm, models=["tiny"])
        return await waiting

    event = asyncio.run(scenario())
    assert event["status"] == "success" and event["value"]["model"] == "tiny"


def test_device_trigger(airflow_db: Path, local_hosts: dict[str, Path]) -> None:
    cpu = asyncio.run(_first_event(OvcacheDeviceTrigger(ovcache_conn_id="ovc_host_a", device="CPU")))
    assert cpu["status"] == "success" and cpu["value"]["can_cache"] is True and "EXPORT_IMPORT" in cpu["value"]["capabilities"]
    npu = asyncio.run(
        _first_event(OvcacheDeviceTrigger(ovcache_conn_id="ovc_host_a", device="NPU", poke_interval=0.2, timeout=0.5))
    )
    assert npu["status"] == "timeout" and "device NPU is not present on host host-a" in npu["message"]


def test_device_condition_fails_fast_on_a_device_that_cannot_cache() -> None:
    # No device without EXPORT_IMPORT exists on this machine; the decision is checked on the agent's answer.
    from airflow_ovcache.hooks.conditions import DeviceCondition
    from airflow_ovcache.hooks.errors import CachingUnsupported
    from airflow_ovcache.hooks.reports import DeviceReport, DevicesReport

    npu = DeviceReport(name="NPU", full_name="Intel(R) AI Boost", capabilities=("FP16",), can_cache=False)
    report = DevicesReport(host="edge-07", runtime="2026.4.1", devices=[npu])
    with pytest.raises(CachingUnsupported, match="host edge-07, device NPU: .*does not report EXPORT_IMPORT"):
        DeviceCondition("NPU").evaluate(report)
    waiting = DeviceCondition("NPU", fail_when_cannot_cache=False).evaluate(report)
    assert not waiting.met and "EXPORT_IMPORT" in waiting.message


def test_model_version_trigger(airflow_db: Path, local_hosts: dict[str, Path], repo: Path, add_version) -> None:  # type: ignore[no-untyped-def]
    there = asyncio.run(_first_event(OvcacheModelVersionTrigger(ovcache_conn_id="ovc_host_a", model="mlp", version=2)))
    assert there["status"] == "success" and there["value"]["version"] == 2

    async def scenario() -> dict[str, Any]:
        waiting = asyncio.ensure_future(
            _first_event(
                OvcacheModelVersionTrigger(ovcache_conn_id="ovc_host_a", model="mlp", newer_than=2, poke_interval=0.2, timeout=60)
            )
        )
        await asyncio.sleep(0.8)
        assert not waiting.done()
        await asyncio.to_thread(add_version, repo, "mlp", 3)
        return await waiting

    event = asyncio.run(scenario())
    assert event["status"] == "success" and event["value"]["version"] == 3 and event["value"]["versions"] == [1, 2, 3]

    # a model folder that does not exist yet is "not yet", not an error
    later = asyncio.run(
        _first_event(OvcacheModelVersionTrigger(ovcache_conn_id="ovc_host_a", model="bert", poke_interval=0.2, timeout=0.5))
    )
    assert later["status"] == "timeout" and "model bert" in later["message"]


class MemoryStateStore:
    """Stands in for the triggerer's asset state store, which needs a running triggerer supervisor."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.data[key] = value


class Events:
    """Drives a multi-event trigger in a task and hands its events over a queue."""

    def __init__(self, trigger: Any) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task = asyncio.ensure_future(self._pump(trigger.run()))

    async def _pump(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            await self.queue.put(event.payload)

    async def take(self, count: int, quiet: float) -> list[dict[str, Any]]:
        """``count`` events, then none for ``quiet`` seconds (an extra one is returned, and fails the test)."""
        got = [await self._next(30) for _ in range(count)]
        try:
            got.append(await self._next(quiet))
        except asyncio.TimeoutError:
            pass
        return got

    async def _next(self, timeout: float) -> dict[str, Any]:
        getter = asyncio.ensure_future(self.queue.get())
        done, _ = await asyncio.wait({getter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if self.task in done:
            self.task.result()  # re-raises what ended the trigger
            raise AssertionError("the trigger stopped")
        raise asyncio.TimeoutError

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def test_new_version_event_trigger_fires_once_per_version(
    airflow_db: Path, local_hosts: dict[str, Path], repo: Path, add_version
) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStateStore()

    def trigger() -> OvcacheNewVersionTrigger:
        t = OvcacheNewVersionTrigger(ovcache_conn_id="ovc_host_a", repository_name="test-repo", models=["mlp"], poke_interval=0.2)
        t.asset_state_store = store  # type: ignore[assignment]
        return t

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        events = Events(trigger())
        # Baseline: versions 1 and 2 exist already and do not fire.
        quiet = await events.take(0, 0.8)
        await asyncio.to_thread(add_version, repo, "mlp", 3)
        await asyncio.to_thread(add_version, repo, "mlp", 4)
        await asyncio.to_thread(add_version, repo, "tiny", 2, "onnx/1")  # another model: ignored
        two = await events.take(2, 0.8)
        # Version 3 removed and published again: the same version, never a second event.
        await asyncio.to_thread(shutil.rmtree, repo / "mlp" / "3")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(add_version, repo, "mlp", 3)
        again = await events.take(0, 0.8)
        await events.close()
        return quiet, two, again + quiet

    quiet, two, none = asyncio.run(scenario())
    assert quiet == [] and none == []
    assert [(e["model"], e["version"]) for e in two] == [("mlp", 3), ("mlp", 4)]
    assert two[0] == {
        "repository": "test-repo",
        "model": "mlp",
        "version": 3,
        "versions": [1, 2, 3, 4],
        "host": "host-a",
        "path": str(repo),
    }
    assert store.data[STATE_KEY] == {"mlp": [1, 2, 3, 4]}

    # A new trigger (a triggerer restart) reads what was seen: version 5 fires, nothing before it again.
    async def after_restart() -> list[dict[str, Any]]:
        events = Events(trigger())
        await asyncio.to_thread(add_version, repo, "mlp", 5)
        got = await events.take(1, 0.8)
        await events.close()
        return got

    assert [e["version"] for e in asyncio.run(after_restart())] == [5]


def test_new_version_event_trigger_options_and_errors(
    airflow_db: Path, local_hosts: dict[str, Path], ovcache_conn, repo: Path
) -> None:
    async def existing() -> list[dict[str, Any]]:
        events = Events(OvcacheNewVersionTrigger(ovcache_conn_id="ovc_host_b", fire_for_existing=True, poke_interval=0.2))
        got = await events.take(3, 0.6)
        await events.close()
        return got

    assert sorted((e["model"], e["version"]) for e in asyncio.run(existing())) == [("mlp", 1), ("mlp", 2), ("tiny", 1)]

    ovcache_conn("ovc_noagent", host="infer-10", repository=repo, agent_command="/opt/missing/ovcache")

    async def broken() -> None:
        async for _ in OvcacheNewVersionTrigger(ovcache_conn_id="ovc_noagent", poke_interval=0.2).run():
            pass

    with pytest.raises(AgentNotInstalled, match="host infer-10"):
        asyncio.run(asyncio.wait_for(broken(), 30))


def test_watched_release_asset_carries_the_event_trigger() -> None:
    from airflow.triggers.base import BaseEventTrigger

    from airflow_ovcache.assets import watched_model_release

    asset = watched_model_release("models-prod", "resnet50", ovcache_conn_id="ovc_host_a", poke_interval=30)
    assert asset.uri == "ovmodel://models-prod/resnet50"
    (watcher,) = asset.watchers
    assert isinstance(watcher.trigger, BaseEventTrigger)
    classpath, kwargs = watcher.trigger.serialize()
    assert kwargs["models"] == ["resnet50"] and kwargs["repository_name"] == "models-prod"
    assert isinstance(BaseEventTrigger.hash(classpath, kwargs), int)


def test_blob_condition_reads_the_verify_report() -> None:
    """Regression guard for the shared entry condition: of several specs for one device a valid one wins, the last listed."""
    from airflow_ovcache.hooks.conditions import BlobCondition
    from airflow_ovcache.hooks.reports import VerifyEntry, VerifyReport

    def row(status: str, device: str, blob: str, version: int = 2) -> VerifyEntry:
        return VerifyEntry.from_json(
            {"status": status, "reason": "r", "model": "mlp", "version": version, "device": device, "blob": blob}
        )

    report = VerifyReport(
        "h1", "/c", [row("ok", "CPU", "a.blob"), row("stale-model", "CPU", "b.blob"), row("ok", "CPU", "c.blob")], {}, 0.0
    )
    met = BlobCondition("mlp", 2).evaluate(report)
    assert met.met and met.message == "mlp@2 on host h1: valid blob for CPU"
    assert met.value == {
        "host": "h1",
        "cache_dir": "/c",
        "model": "mlp",
        "version": 2,
        "devices": {"CPU": "ok"},
        "blobs": {"CPU": "c.blob"},
    }
    waiting = BlobCondition("mlp", 2, ["CPU", "GPU"]).evaluate(report)
    assert not waiting.met and waiting.message == "mlp@2 on host h1: waiting for GPU: not warmed"
    stale = BlobCondition("mlp", 2).evaluate(VerifyReport("h1", "/c", [row("stale-model", "CPU", "b.blob")], {}, 0.0))
    assert not stale.met and stale.message == "mlp@2 on host h1: waiting for CPU: stale-model (r)"
    other = BlobCondition("mlp", 2).evaluate(VerifyReport("h1", "/c", [row("ok", "CPU", "x.blob", version=1)], {}, 0.0))
    assert not other.met and other.message == "mlp@2 on host h1: no managed blob yet"
    assert BlobCondition("mlp", 2, None, True).arguments() == {"model": "mlp", "version": 2, "devices": [], "load_check": True}
