"""A release warm-up through a real distributed Airflow: each host's tasks on that host's own worker.

On this machine's PostgreSQL and Redis: the metadata database (a fresh one,
dropped at the end), CeleryExecutor with Redis as broker and PostgreSQL as
result backend, and as separate processes the API server, the scheduler, the
DAG processor, a worker for the default queue, and for each of two inference
hosts its own Celery worker and its own triggerer, both on the host's queue.
Each host has its own model repository and cache directory.

The release is triggered through the REST API before the new version has
reached the hosts, so each host's version sensor defers; its trigger must be
picked up by that host's triggerer. Only then is the version copied in. The
test then checks that every host task ran on its host's worker, that the old
version was retired after the new one verified, and that a serving-style
compile in a fresh process loads each host's blob from its cache.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.samples import build_ir
from tests.conftest import blobs_in, require
from tests.distributed.cluster import Cluster, Host, postgres_reachable, redis_reachable

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAG_ID = "ovcache_release_by_queue"
DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / f"{DAG_ID}.py"
HOST_TASKS = ["wait_for_version", "check_devices", "warm", "verify", "invalidate"]
SERVE = """
import sys, openvino as ov
cm = ov.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2]})
print(bool(cm.get_property("LOADED_FROM_CACHE")))
"""


def _prerequisites() -> None:
    require(
        importlib.util.find_spec("airflow.providers.celery") is not None,
        "apache-airflow-providers-celery is not installed (pip install -e '.[celery]')",
    )
    require(importlib.util.find_spec("psycopg2") is not None, "psycopg2 is not installed (pip install -e '.[celery]')")
    require(
        postgres_reachable(),
        "PostgreSQL is not reachable with $OVCACHE_TEST_PG (default: 127.0.0.1:5432 as user postgres; .ci/run starts it)",
    )
    require(redis_reachable(), "Redis is not reachable on 127.0.0.1:6379 (.ci/run starts it)")


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}: stopping the cluster")


def _by_task(tis: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(ti["task_id"], ti["map_index"]): ti for ti in tis}


def _prewarm(host: Host) -> subprocess.Popen[str]:
    """Version 1 is already warmed on each host: the release of version 2 must retire it, after verifying 2."""
    argv = [sys.executable, "-m", "airflow_ovcache.cli.main", "warm", "--repository", str(host.repository)]
    argv += ["--cache-dir", str(host.cache_dir), "--versions", "specific:1", "--device", "CPU", "--json"]
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "OVCACHE_HOST": host.name}
    )


def _versions(host: Host) -> list[tuple[str, int]]:
    manifest = Manifest.load(host.cache_dir / ".ovcache" / "manifest.json")
    return sorted((e.model, e.version) for e in manifest.entries.values())


def _serve(host: Host, version: int) -> bool:
    model = host.repository / "mlp" / str(version) / "model.xml"
    proc = subprocess.run(
        [sys.executable, "-c", SERVE, str(model), str(host.cache_dir)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1] == "True"


def _publish(source: Path, host: Host, version: int) -> None:
    """Publish a version folder as a release pipeline should: copy next to it, then rename into place."""
    staging = host.repository / "mlp" / f".incoming-{version}"
    shutil.copytree(source, staging)
    staging.rename(host.repository / "mlp" / str(version))


def test_release_runs_each_hosts_tasks_on_its_own_worker_and_triggerer(tmp_path: Path) -> None:
    _prerequisites()
    began = time.monotonic()
    hosts = [Host("infer-1", tmp_path / "infer-1"), Host("infer-2", tmp_path / "infer-2")]
    release = {v: build_ir(tmp_path / "release" / str(v) / "model.xml", size_mb=1.0, seed=300 + v).parent for v in (1, 2)}
    for host in hosts:
        shutil.copytree(release[1], host.repository / "mlp" / "1")
    cluster = Cluster(
        tmp_path,
        hosts,
        [DAG_FILE],
        extra_env={
            "OVCACHE_RELEASE_MODELS": "mlp",
            "OVCACHE_QUEUE_RETAIN": "latest:1",
            "OVCACHE_WAIT_POKE_SECONDS": "2",
            "OVCACHE_WAIT_FOR_VERSION_SECONDS": "240",
        },
    )
    timings: dict[str, float] = {}
    problems: list[str] = []
    # A CI runner that gives up sends SIGTERM: turn it into an exception so the tear-down below still runs.
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        prewarms = [_prewarm(h) for h in hosts]
        cluster.prepare()
        for host, proc in zip(hosts, prewarms, strict=True):
            out, _ = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"pre-warm of version 1 on {host.name} failed: {out}"
            assert _versions(host) == [("mlp", 1)]
        timings["database and pre-warm"] = time.monotonic() - began

        cluster.start()
        cluster.login()
        cluster.wait_for("the DAG to be parsed", lambda: cluster.request("GET", f"/api/v2/dags/{DAG_ID}"), timeout=180)
        timings["components up"] = time.monotonic() - began
        cluster.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        run = cluster.request(
            "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"model": "mlp", "version": 2}}
        )
        run_id = run["dag_run_id"]

        # Each host's version sensor finds no version 2, defers, and its trigger goes to the host's own triggerer.
        def deferred_to_a_triggerer() -> dict[str, dict[str, Any]] | None:
            tis = _by_task(cluster.task_instances(DAG_ID, run_id))
            found = {}
            for host in hosts:
                ti = tis.get((f"{host.name}.wait_for_version", 0))
                if ti and ti["state"] in ("success", "failed", "upstream_failed", "skipped"):
                    raise AssertionError(f"{host.name}.wait_for_version ended {ti['state']} without deferring: {ti}")
                if not ti or ti["state"] != "deferred" or not ti["trigger"] or ti["trigger"]["triggerer_id"] is None:
                    return None
                found[host.name] = ti
            return found

        deferred = cluster.wait_for("both version sensors to defer to a triggerer", deferred_to_a_triggerer, timeout=180)
        timings["sensors deferred"] = time.monotonic() - began
        triggerers = {job["id"]: job["hostname"] for job in cluster.jobs("TriggererJob")}
        for host in hosts:
            trigger = deferred[host.name]["trigger"]
            assert trigger["classpath"].endswith("OvcacheModelVersionTrigger")
            assert trigger["queue"] == host.queue
            assert triggerers[trigger["triggerer_id"]] == host.name, (
                f"{host.name}'s trigger ran on {triggerers[trigger['triggerer_id']]}"
            )
            assert not (host.repository / "mlp" / "2").exists()
            _publish(release[2], host, 2)

        def finished() -> str | None:
            state = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        state = cluster.wait_for("the run to finish", finished, timeout=300, interval=2)
        timings["run finished"] = time.monotonic() - began
        tis = _by_task(cluster.task_instances(DAG_ID, run_id))
        assert state == "success", {k: v["state"] for k, v in tis.items()}

        # every task that touches a host ran on that host's worker, from that host's queue
        for host in hosts:
            for step in HOST_TASKS:
                ti = tis[(f"{host.name}.{step}", 0)]
                assert (ti["state"], ti["queue"], ti["hostname"]) == ("success", host.queue, host.name), ti
        # and the bookkeeping on the control plane's worker
        for task_id, map_index in [
            ("releases", -1),
            ("summary", -1),
            *((f"targets.{h.name}", -1) for h in hosts),
            *((f"{h.name}.outcome", 0) for h in hosts),
        ]:
            ti = tis[(task_id, map_index)]
            assert (ti["state"], ti["queue"], ti["hostname"]) == ("success", "default", "control"), ti

        # the sensor resumed from its trigger (one try, no re-poke from scratch) with what the trigger found,
        # and the trigger's own log was written by that host's triggerer job
        for host in hosts:
            triggerer_id = deferred[host.name]["trigger"]["triggerer_id"]
            attempt = cluster.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={host.name}.wait_for_version"
            trigger_log = attempt / "map_index=0" / f"attempt=1.log.trigger.{triggerer_id}.log"
            assert "version 2 is there (after" in trigger_log.read_text(), trigger_log
            sensor = tis[(f"{host.name}.wait_for_version", 0)]
            assert sensor["try_number"] == 1 and sensor["trigger"] is None
            found = cluster.xcom(DAG_ID, run_id, f"{host.name}.wait_for_version", 0)
            assert (found["host"], found["model"], found["version"]) == (host.name, "mlp", 2)

        summary = cluster.xcom(DAG_ID, run_id, "summary")
        assert (summary["hosts"], summary["failures"]) == (2, 0)
        outcomes = {o["host"]: o for o in summary["outcomes"]}
        for host in hosts:
            outcome = outcomes[host.name]
            assert (outcome["ok"], outcome["queue"], outcome["version"]) == (True, host.queue, 2)
            assert outcome["warm"]["items"][0]["loaded_from_cache"] is True
            assert [(r["model"], r["version"], r["reason"]) for r in outcome["invalidate"]["removals"]] == [("mlp", 1, "retired")]

        # each host's cache holds version 2's blob only, and a server starting now loads it from cache
        for host in hosts:
            assert _versions(host) == [("mlp", 2)]
            assert len(blobs_in(host.cache_dir)) == 1
            assert _serve(host, 2) is True, f"{host.name}: a serving compile did not load from cache"

        # per host-task latency, for docs/deployment.md's comparison with edge workers (the sensor deferred: left out)
        from datetime import datetime

        def _t(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        for host in hosts:
            rows = [tis[(f"{host.name}.{step}", 0)] for step in HOST_TASKS[1:]]
            pickup = sorted((_t(r["start_date"]) - _t(r["queued_when"])).total_seconds() for r in rows)
            total = sorted((_t(r["end_date"]) - _t(r["queued_when"])).total_seconds() for r in rows)
            print(
                f"celery host-task latency on {host.name}: pickup median {pickup[len(pickup) // 2]:.2f}s, queued to ended median {total[len(total) // 2]:.2f}s"
            )

        # the per-host cache assets were emitted through the alias
        query = urllib.parse.urlencode({"source_dag_id": DAG_ID, "source_run_id": run_id, "limit": 100})
        events = cluster.request("GET", f"/api/v2/assets/events?{query}")
        assert {e["uri"] for e in events["asset_events"]} == {f"ovcache://{h.name}/mlp" for h in hosts}
    except BaseException:
        print(cluster.diagnostics())
        for log in sorted((cluster.home / "logs").rglob("*.log")):
            text = log.read_text(errors="replace")
            if "ERROR" in text or "Traceback" in text:
                print(f"===== task log {log.relative_to(cluster.home)} =====\n" + "\n".join(text.splitlines()[-40:]))
        raise
    finally:
        problems = cluster.destroy()
        signal.signal(signal.SIGTERM, previous)
        timings["torn down"] = time.monotonic() - began
        print("distributed run timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    assert not problems, problems
