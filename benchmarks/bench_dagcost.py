"""The release DAG's own cost as the fleet grows: task instances and Airflow's CPU time, lean vs step by step.

A real Airflow on this machine (``tests/distributed/cluster.py``): PostgreSQL as the metadata
database, CeleryExecutor on Redis, and as separate processes the API server, the scheduler,
the DAG processor and one Celery worker for the default queue. ``ovcache_release_warmup``
releases one tiny model version to an inventory of N hosts, triggered through the REST API,
with every host **lean** (``lean = true``: one ``ovcache release`` agent run per host) or
**step by step** (wait, devices, warm, verify, invalidate, outcome: a task each).

The hosts are local cache directories on this machine (said so in the table): each is
reached through one ``ovcache`` connection with the local transport, so the agent runs on
the worker, and every host compiles the same 0.1 MB model into a cache of its own. What is
measured is the DAG's cost, not the compiles: the task instances of the run (from the REST
API), the host-scoped ones per host, the run's wall time (the DAG run's start to end), and
the CPU seconds each Airflow component used during the run, read from ``/proc`` for every
process of its session (the worker's include the task processes and the agents they ran).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import REPO_DIR, Context, table

NAME = "dagcost"
TITLE = "The release DAG's own cost: task instances and Airflow CPU time, 1 to 64 hosts, lean vs step by step"

DAG_ID = "ovcache_release_warmup"
DAG_FILE = REPO_DIR / "dags" / f"{DAG_ID}.py"
MODEL = "m"
# (path, host counts). Step by step stops earlier: its task instances are the cost being shown.
FULL = (("lean", (1, 8, 32, 64)), ("per-step", (1, 8, 16)))
QUICK = (("lean", (1, 4)), ("per-step", (1, 4)))
# The DAG's per-host task groups (dags/ovcache_release_warmup.py's GROUPS).
GROUPS = ("on_host.", "on_builder.", "on_installer.", "on_lean_installer.", "on_lean_host.")
# Task slots of the worker: one per core.
CONCURRENCY = 2


def _session_cpu(pid: int) -> float:
    """CPU seconds of every live process in ``pid``'s session, with the children each has reaped."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) != pid:
                continue
            times = proc.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return total


def _inventory(path: Path, hosts: int, lean: bool, caches: Path, repository: Path) -> None:
    lines = [
        "[defaults]",
        f'repository = "{repository}"',
        'conn_id = "ovcache_local"',
        'retain = "latest:1"',
        f"lean = {'true' if lean else 'false'}",
        "",
    ]
    for i in range(hosts):
        name = f"h{i:03d}"
        lines += ["[[hosts]]", f'name = "{name}"', f'cache_dir = "{caches / name}"', ""]
    path.write_text("\n".join(lines))


def _seconds(start: str, end: str) -> float:
    from datetime import datetime

    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()


def _release(ctx: Context, cluster: Any, path: str, hosts: int, inventory: Path, repository: Path) -> dict[str, Any]:
    caches = ctx.fresh(f"dagcost-caches-{path}-{hosts}")
    _inventory(inventory, hosts, path == "lean", caches, repository)
    pids = {c.name: c.proc.pid for c in cluster.components if c.proc is not None}
    before = {name: _session_cpu(pid) for name, pid in pids.items()}
    started = time.monotonic()
    run = cluster.request(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {"model": MODEL, "version": 1}}
    )
    run_id = run["dag_run_id"]

    def finished() -> dict[str, Any] | None:
        got = cluster.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")
        return got if got["state"] in ("success", "failed") else None

    done = cluster.wait_for(f"the release to {hosts} hosts ({path})", finished, timeout=1800, interval=1.0)
    observed = time.monotonic() - started
    after = {name: _session_cpu(pid) for name, pid in pids.items()}
    tis = cluster.task_instances(DAG_ID, run_id)
    if done["state"] != "success":
        failed = sorted({ti["task_id"] for ti in tis if ti["state"] not in ("success", "skipped")})
        raise RuntimeError(f"the release to {hosts} hosts ({path}) ended {done['state']}: {failed}")
    # One instance per host and task of its group (map_index 0..N-1); a group no host takes leaves one
    # unmapped placeholder (map_index -1) per task, counted in the run's total only.
    host_scoped = [ti for ti in tis if ti["task_id"].startswith(GROUPS) and ti["map_index"] >= 0]
    summary = cluster.xcom(DAG_ID, run_id, "summary")
    if summary["hosts"] != hosts or summary["failures"]:
        raise RuntimeError(
            f"the summary of the release to {hosts} hosts says {summary['hosts']} hosts, {summary['failures']} failed"
        )
    blobs = sum(1 for _ in caches.glob("*/*.blob"))
    if blobs != hosts:
        raise RuntimeError(f"after the release to {hosts} hosts ({path}) the caches hold {blobs} blobs")
    return {
        "path": path,
        "hosts": hosts,
        "task_instances": len(tis),
        "host_task_instances": len(host_scoped),
        "per_host": round(len(host_scoped) / hosts, 2),
        "run_s": round(_seconds(done["start_date"], done["end_date"]), 1),
        "observed_s": round(observed, 1),
        "cpu_s": {name: round(after[name] - before[name], 1) for name in pids},
    }


def run(ctx: Context) -> dict[str, Any]:
    if str(REPO_DIR) not in sys.path:
        sys.path.insert(0, str(REPO_DIR))
    from airflow_ovcache.samples import build_ir
    from tests.distributed.cluster import Cluster, postgres_reachable, redis_reachable

    if not (postgres_reachable() and redis_reachable()):
        raise RuntimeError("the dagcost benchmark needs PostgreSQL and Redis on 127.0.0.1 (see tests/distributed/cluster.py)")
    root = ctx.fresh("dagcost")
    repository = root / "models"
    build_ir(repository / MODEL / "1" / "model.xml", size_mb=0.1, seed=7)
    inventory = root / "inventory.toml"
    cluster = Cluster(
        root,
        [],
        [DAG_FILE],
        extra_env={"OVCACHE_INVENTORY": str(inventory), "OVCACHE_RELEASE_MODELS": MODEL, "OVCACHE_LEAN_WAIT_SECONDS": "0"},
        control_concurrency=CONCURRENCY,
    )
    rows: list[dict[str, Any]] = []
    try:
        ctx.log("dagcost: database, then API server, scheduler, DAG processor, worker")
        cluster.prepare()
        cluster.start()
        cluster.login()
        cluster.wait_for("the DAG to be parsed", lambda: cluster.request("GET", f"/api/v2/dags/{DAG_ID}"), timeout=240)
        cluster.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        for path, counts in QUICK if ctx.quick else FULL:
            for hosts in counts:
                ctx.log(f"dagcost: release to {hosts} hosts, {path}")
                row = _release(ctx, cluster, path, hosts, inventory, repository)
                ctx.log(
                    f"dagcost: {hosts} hosts {path}: {row['task_instances']} task instances, run {row['run_s']} s, "
                    f"scheduler {row['cpu_s'].get('scheduler')} CPU-s"
                )
                rows.append(row)
    except BaseException:
        print(cluster.diagnostics(40), file=sys.stderr)
        raise
    finally:
        problems = cluster.destroy()
        if problems:
            ctx.log(f"dagcost: teardown problems: {problems}")
    return {"concurrency": CONCURRENCY, "rows": rows}


def tables(result: dict[str, Any]) -> dict[str, str]:
    """One row per release: hosts, path, task instances, wall, each component's CPU seconds."""
    m = result["measurements"]
    out = []
    for row in m["rows"]:
        cpu = row["cpu_s"]
        out.append(
            [
                row["hosts"],
                row["path"],
                f"{row['task_instances']} ({row['host_task_instances']} in the hosts' groups)",
                row["per_host"],
                row["run_s"],
                cpu.get("scheduler", "n/a"),
                cpu.get("api-server", "n/a"),
                cpu.get("dag-processor", "n/a"),
                cpu.get("worker-control", "n/a"),
            ]
        )
    head = [
        "hosts (local cache directories)",
        "path",
        "task instances",
        "per host",
        "run wall (s)",
        "scheduler CPU-s",
        "API server CPU-s",
        "DAG processor CPU-s",
        f"worker CPU-s ({m['concurrency']} slots; tasks and agents included)",
    ]
    return {"dagcost": table(head, out)}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's target: the lean path's task instances per host at most 2."""
    lean = [r for r in result["measurements"]["rows"] if r["path"] == "lean"]
    worst = max((r["per_host"] for r in lean), default=None)
    largest = max((r["hosts"] for r in lean), default=0)
    return [
        {
            "what": f"lean path: task instances per host, 1 to {largest} hosts",
            "target": "at most 2",
            "result": f"at most {worst}" if worst is not None else "not measured",
            "met": worst is not None and worst <= 2,
        }
    ]
