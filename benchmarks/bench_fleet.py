"""9. Fleet warm-up through the provider: 1 to 8 hosts over SSH, and what the transport costs per host-task.

The hosts are network namespaces on a private bridge, each with its own
``sshd``, cache directory and model repository (``tests/infra/fleet.py``; needs
root; torn down afterwards, also on failure or SIGTERM). Every host gets the
same model files (a transformer-shaped encoder from ``samples.build_transformer``,
8 layers, width 256, fixed seed) under its own path, so each compiles its own blob.

A separate interpreter (``benchmarks/fleet_probe.py``) plays the Airflow worker:
it calls the provider's ``OvcacheHook`` over SSH (paramiko, host key pinned),
exactly as the operators do, with one thread per host-task, and splits each call
with wrappers around the transport's methods:

* **transport**: ``hook.run_agent("version")`` (``ovcache version --json``, no
  compile) on every host, and once through a local-subprocess connection for
  comparison: SSH connect (TCP, handshake, key auth), the remote session (the
  agent's interpreter start, imports and run), JSON parsing;
* **alone**: each host warmed on its own, one after another, into an empty cache:
  the hook's wall time per host-task against the agent's own ``seconds`` and its
  ``compile_seconds``;
* **parallel**: N = 1, 2, 4, 8 hosts warmed at once (N threads released by a
  barrier; empty caches), then the same again with nothing to do (no-op).

*Transport overhead* of a host-task is the hook's wall time minus the seconds the
agent reports in its envelope (from after its imports to its output): SSH connect,
session set-up, the agent's interpreter start and imports, and moving and parsing
the JSON. The machine has 2 cores: N agents compiling at once share them, so
parallel wall time cannot drop below half the sum of the CPU work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchlib import BENCH_DIR, Context, describe_model, namespace_fleet, spawn, summary, table

NAME = "fleet"
TITLE = "Fleet warm-up through the provider: 1 to 8 hosts over SSH"

COUNTS_FULL = (1, 2, 4, 8)
COUNTS_QUICK = (1, 2)
MODEL = ("enc", 8, 256, 21)  # name, layers, width, seed
TARGET_OVERHEAD_S = 1.0
CONNECT = "ssh connect (TCP, handshake, key auth)"  # the step label fleet_probe.py gives the "ssh.connect" span


def _model(ctx: Context) -> Path:
    from airflow_ovcache.samples import build_transformer

    name, layers, width, seed = MODEL
    path = ctx.workdir / "fleet-model" / name / "1" / "model.xml"
    if not path.exists():
        build_transformer(path, layers=layers, width=width, seed=seed)
    return path


def run(ctx: Context) -> dict[str, Any]:
    counts = COUNTS_QUICK if ctx.quick else COUNTS_FULL
    model = _model(ctx)
    local_cache = ctx.fresh("fleet/local-cache")
    with namespace_fleet(ctx, max(counts), NAME) as (fleet, env, teardown):
        for host in fleet:
            host.add_model(model.parent, MODEL[0], 1)
        env["AIRFLOW_CONN_OVCACHE_BENCH_LOCAL"] = json.dumps(
            {
                "conn_type": "ovcache",
                "extra": {"transport": "local", "cache_dir": str(local_cache), "agent_command": fleet.agent_command},
            }
        )
        args = {
            "hosts": [
                {"name": h.name, "conn_id": h.conn_id, "cache_dir": str(h.cache_dir), "repository": str(h.repository)}
                for h in fleet
            ],
            "model": MODEL[0],
            "local_conn_id": "ovcache_bench_local",
            "counts": list(counts),
            "rounds": ctx.repeats(5, 1),
            "transport_repeats": ctx.repeats(4, 2),
        }
        ctx.log(
            f"fleet: {args['rounds']} rounds of: each host alone, then {', '.join(map(str, counts))} hosts at once (cold, no-op)"
        )
        proc = spawn([ctx.python, str(BENCH_DIR / "fleet_probe.py"), json.dumps(args)], env=env, timeout=1200)
        if proc.code != 0:
            raise RuntimeError(f"fleet probe failed (exit {proc.code}): {proc.err[-3000:]}")
        data = proc.json()
    return _analyse(data, counts, describe_model(model), teardown)


def _overhead(task: dict[str, Any]) -> float:
    return task["wall"] - task["agent_seconds"]


def _analyse(data: dict[str, Any], counts: tuple[int, ...], model: dict[str, Any], teardown: list[str]) -> dict[str, Any]:
    problems: list[str] = [f"teardown: {t}" for t in teardown]
    transport: dict[str, Any] = {}
    for kind in ("ssh", "local"):
        samples = [s for s in data["transport"] if s["kind"] == kind]
        steps: dict[str, list[float]] = {}
        for s in samples:
            for name, secs in s["steps"].items():
                steps.setdefault(name, []).append(secs)
        transport[kind] = {
            "wall_ms": summary([s["wall"] for s in samples], 1000, 1),
            "agent_ms": summary([s["agent_seconds"] for s in samples], 1000, 1),
            "overhead_ms": summary([_overhead(s) for s in samples], 1000, 1),
            "steps_ms": {k: summary(v, 1000, 1) for k, v in steps.items()},
        }
    seq = data["sequential"]  # rounds x hosts
    for rnd in seq:
        for task in rnd:
            if task["status"] != "warmed":
                problems.append(f"alone: {task['host']} {task['status']}")
    alone = [t for rnd in seq for t in rnd]
    alone_steps: dict[str, list[float]] = {}
    for t in alone:
        for name, secs in t["steps"].items():
            alone_steps.setdefault(name, []).append(secs)
    per_n = []
    for n in counts:
        runs = [p for p in data["parallel"] if p["hosts"] == n]
        noops = [p for p in data["noop"] if p["hosts"] == n]
        for p in runs + noops:
            problems += [f"{n} hosts: {e}" for e in p["errors"]]
        for p in runs:
            problems += [f"{n} hosts: {t['host']} {t['status']}" for t in p["tasks"] if t["status"] != "warmed"]
        for p in noops:
            problems += [f"{n} hosts no-op: {t['host']} {t['status']}" for t in p["tasks"] if t["status"] != "unchanged"]
        sum_compile = [sum(t["compile_seconds"] or 0.0 for t in rnd[:n]) for rnd in seq]
        sum_walls = [sum(t["wall"] for t in rnd[:n]) for rnd in seq]
        tasks = [t for p in runs for t in p["tasks"]]
        per_n.append(
            {
                "hosts": n,
                "rounds": len(runs),
                "wall_ms": summary([p["wall"] for p in runs], 1000, 1),
                "noop_wall_ms": summary([p["wall"] for p in noops], 1000, 1),
                "sum_alone_compile_ms": summary(sum_compile, 1000, 1),
                "sum_alone_wall_ms": summary(sum_walls, 1000, 1),
                "task_wall_ms": summary([t["wall"] for t in tasks], 1000, 1),
                "task_agent_ms": summary([t["agent_seconds"] for t in tasks], 1000, 1),
                "task_compile_ms": summary([t["compile_seconds"] or 0.0 for t in tasks], 1000, 1),
                "task_overhead_ms": summary([_overhead(t) for t in tasks], 1000, 1),
                "noop_task_overhead_ms": summary([_overhead(t) for p in noops for t in p["tasks"]], 1000, 1),
                "task_connect_ms": summary([t["steps"].get(CONNECT, 0.0) for t in tasks], 1000, 1),
            }
        )
    return {
        "model": model,
        "model_params": {"name": MODEL[0], "layers": MODEL[1], "width": MODEL[2], "seed": MODEL[3]},
        "hosts": len(seq[0]) if seq else 0,
        "counts": list(counts),
        "probe_import_ms": round(data["import_s"] * 1000, 1),
        "transport": transport,
        "alone": {
            "n": len(alone),
            "wall_ms": summary([t["wall"] for t in alone], 1000, 1),
            "agent_ms": summary([t["agent_seconds"] for t in alone], 1000, 1),
            "item_ms": summary([t["item_seconds"] or 0.0 for t in alone], 1000, 1),
            "compile_ms": summary([t["compile_seconds"] or 0.0 for t in alone], 1000, 1),
            "overhead_ms": summary([_overhead(t) for t in alone], 1000, 1),
            "steps_ms": {k: summary(v, 1000, 1) for k, v in alone_steps.items()},
        },
        "parallel": per_n,
        "target_overhead_s": TARGET_OVERHEAD_S,
        "problems": problems,
    }


def _med(stat: dict[str, Any]) -> str:
    return f"{stat['median']:,.0f}" if stat.get("n") else "n/a"


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: the transport per host-task, and N hosts at once."""
    m = result["measurements"]
    tr = m["transport"]
    rows = []
    for kind, label in (("ssh", "SSH to a namespace host"), ("local", "local subprocess (no SSH)")):
        t = tr[kind]
        rows.append(
            [
                label,
                t["wall_ms"]["n"],
                f"{t['wall_ms']['median']:.0f} ({t['wall_ms']['p25']:.0f}-{t['wall_ms']['p75']:.0f})",
                f"{t['agent_ms']['median']:.1f}",
                f"{t['overhead_ms']['median']:.0f}",
            ]
        )
    out = {"fleet.transport": table(["transport", "n", "hook wall", "agent's own seconds", "overhead (wall - agent)"], rows)}
    rows = []
    for p in m["parallel"]:
        speedup = p["sum_alone_wall_ms"]["median"] / p["wall_ms"]["median"] if p["wall_ms"].get("n") else 0
        rows.append(
            [
                p["hosts"],
                p["rounds"],
                _med(p["wall_ms"]),
                _med(p["sum_alone_compile_ms"]),
                _med(p["sum_alone_wall_ms"]),
                f"{speedup:.2f}x",
                _med(p["task_compile_ms"]),
                f"{_med(p['task_overhead_ms'])} (max {p['task_overhead_ms'].get('max', 0):,.0f})",
                _med(p["noop_wall_ms"]),
                _med(p["noop_task_overhead_ms"]),
            ]
        )
    out["fleet.parallel"] = table(
        [
            "hosts",
            "rounds",
            "fleet wall (cold)",
            "sum of individual compile times",
            "sum of individual host-task walls",
            "speed-up vs one at a time",
            "compile per host, in parallel",
            "transport overhead per host-task",
            "fleet wall, no-op",
            "overhead per no-op host-task",
        ],
        rows,
    )
    return out


def plot(result: dict[str, Any], outdir: Any) -> list[tuple[str, str]]:
    import plots

    m = result["measurements"]
    ps = m["parallel"]
    xs = [p["hosts"] for p in ps]
    fig, (ax1, ax2) = plots.figure(2)
    ax1.plot(xs, [p["wall_ms"]["median"] / 1000 for p in ps], marker="o", label="fleet warm-up, N at once (cold)")
    ax1.plot(
        xs,
        [p["sum_alone_wall_ms"]["median"] / 1000 for p in ps],
        marker="s",
        ls="--",
        label="sum of host-task walls, one at a time",
    )
    ax1.plot(
        xs, [p["sum_alone_compile_ms"]["median"] / 1000 for p in ps], marker="^", ls="--", label="sum of individual compile times"
    )
    ax1.plot(xs, [p["noop_wall_ms"]["median"] / 1000 for p in ps], marker="o", label="fleet warm-up, N at once (no-op)")
    ax1.set_xlabel("hosts")
    ax1.set_ylabel("wall time (s)")
    ax1.set_xticks(xs)
    ax1.set_ylim(bottom=0)
    ax1.set_title("fleet wall time")
    ax1.legend(fontsize=7)
    labels = ["alone"] + [str(x) for x in xs]
    overhead = [m["alone"]["overhead_ms"]["median"] / 1000] + [p["task_overhead_ms"]["median"] / 1000 for p in ps]
    agent = [m["alone"]["agent_ms"]["median"] / 1000] + [p["task_agent_ms"]["median"] / 1000 for p in ps]
    compile_s = [m["alone"]["compile_ms"]["median"] / 1000] + [p["task_compile_ms"]["median"] / 1000 for p in ps]
    pos = list(range(len(labels)))
    ax2.bar(pos, compile_s, label="compile_model (agent)", color="tab:green")
    ax2.bar(
        pos,
        [a - c for a, c in zip(agent, compile_s, strict=True)],
        bottom=compile_s,
        label="rest of the agent's work",
        color="tab:olive",
    )
    ax2.bar(pos, overhead, bottom=agent, label="transport overhead (SSH, agent start, JSON)", color="tab:gray")
    ax2.axhline(m["target_overhead_s"], color="red", lw=0.8, ls=":", label=f"overhead target {m['target_overhead_s']:g} s")
    ax2.set_xticks(pos, labels)
    ax2.set_xlabel("hosts at once")
    ax2.set_ylabel("one host-task, median (s)")
    ax2.set_title("one host-task's wall time")
    ax2.legend(fontsize=7)
    name = plots.save(fig, outdir, "fleet.png", "2-core machine: N agents share two cores")
    return [(name, "fleet warm-up wall time against hosts, and one host-task split into compile, agent work and transport")]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    limit = m["target_overhead_s"] * 1000
    out = [
        {
            "what": "transport overhead per host-task over SSH (namespace host on this machine), one at a time",
            "target": f"< {m['target_overhead_s']:g} s",
            "result": f"{m['alone']['overhead_ms']['median']:.0f} ms per warm (p75 {m['alone']['overhead_ms']['p75']:.0f}); "
            f"`version`: {m['transport']['ssh']['overhead_ms']['median']:.0f} ms",
            "met": m["alone"]["overhead_ms"]["p75"] < limit
            and m["transport"]["ssh"]["overhead_ms"]["p75"] < limit
            and not m["problems"],
        }
    ]
    biggest = m["parallel"][-1]
    out.append(
        {
            "what": f"the same with {biggest['hosts']} host-tasks at once on 2 cores",
            "target": f"< {m['target_overhead_s']:g} s",
            "result": f"{biggest['task_overhead_ms']['median']:.0f} ms median, {biggest['task_overhead_ms']['max']:.0f} ms max",
            "met": biggest["task_overhead_ms"]["median"] < limit,
        }
    )
    return out
