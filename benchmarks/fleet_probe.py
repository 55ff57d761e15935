"""The Airflow side of the fleet benchmark, in its own interpreter: ``python fleet_probe.py '<json args>'``.

``bench_fleet.py`` starts the hosts (network namespaces with their own sshd) and
runs this with ``AIRFLOW_HOME`` pointing at a scratch folder and the hosts'
``AIRFLOW_CONN_*`` in the environment. Everything goes through the provider's
``OvcacheHook`` over SSH, as a task would; the provider's trace spans
(``airflow_ovcache.core.trace``, switched on in this process only) split each
call into its parts. Prints one JSON line.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchlib import run_together

T0 = time.perf_counter()


# Each call's parts: (label in the result, span the provider records).
STEPS = [
    ("ssh hook (read connection)", "ssh.hook"),
    ("ssh connect (TCP, handshake, key auth)", "ssh.connect"),
    ("remote session (agent start to exit)", "ssh.session"),
    ("local subprocess (agent start to exit)", "local.run"),
    ("parse JSON envelope", "agent.parse"),
]


def steps_since(start: float) -> dict[str, float]:
    """Seconds per step of this thread's spans that opened after ``start`` (each host-task runs in its own thread)."""
    from airflow_ovcache.core import trace

    labels = dict((name, label) for label, name in STEPS)
    me = threading.get_ident()
    out: dict[str, float] = {}
    for span in trace.spans():
        if span.thread == me and span.start >= start:
            label = labels[span.name]
            out[label] = out.get(label, 0.0) + (span.duration or 0.0)
    return out


def main() -> int:
    args = json.loads(sys.argv[1])
    t_import = time.perf_counter()
    from airflow_ovcache.core import trace
    from airflow_ovcache.hooks.commands import WarmRequest
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    import_s = time.perf_counter() - t_import
    trace.enable(only=[name for _, name in STEPS])
    hosts: list[dict[str, Any]] = args["hosts"]
    model: str = args["model"]
    out: dict[str, Any] = {"import_s": import_s, "transport": [], "sequential": [], "parallel": [], "noop": []}

    def version_call(conn_id: str) -> dict[str, Any]:
        hook = OvcacheHook(conn_id)
        start = time.perf_counter()
        run = hook.run_agent("version")
        wall = time.perf_counter() - start
        return {"wall": wall, "agent_seconds": run.seconds, "steps": steps_since(start), "host": run.host}

    def warm_call(host: dict[str, Any]) -> dict[str, Any]:
        hook = OvcacheHook(host["conn_id"])
        start = time.perf_counter()
        # What hook.warm() does, keeping the raw item (it has the agent's own per-item seconds).
        run = hook.run_request(
            WarmRequest(hook.config.cache_dir, hook.config.repository, (model,), version_numbers=(1,), devices=("CPU",))
        )
        end = time.perf_counter()
        item = run.result["items"][0]
        return {
            "host": run.host,
            "start": start,
            "end": end,
            "wall": end - start,
            "agent_seconds": run.seconds,
            "status": item["status"],
            "item_seconds": item.get("seconds"),
            "compile_seconds": item.get("compile_seconds"),
            "steps": steps_since(start),
        }

    def clear(chosen: list[dict[str, Any]]) -> None:
        for host in chosen:
            shutil.rmtree(host["cache_dir"], ignore_errors=True)
            Path(host["cache_dir"]).mkdir(mode=0o700)

    def parallel(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        wall, results, raised = run_together([lambda h=h: warm_call(h) for h in chosen])
        errors = [f"{h['name']}: {type(e).__name__}: {e}" for h, e in zip(chosen, raised, strict=True) if e is not None]
        return {"hosts": len(chosen), "wall": wall, "tasks": [r for r in results if r is not None], "errors": errors}

    # 1. transport: the agent's cheapest command, through the hook, over SSH and locally
    for _ in range(int(args["transport_repeats"])):
        for host in hosts:
            out["transport"].append({"kind": "ssh", **version_call(host["conn_id"])})
        out["transport"].append({"kind": "local", **version_call(args["local_conn_id"])})

    # 2 and 3, per round: each host warmed alone (cold), then N hosts at once (cold, then no-op)
    counts: list[int] = args["counts"]
    for r in range(int(args["rounds"])):
        clear(hosts)
        seq = []
        for host in hosts:
            seq.append(warm_call(host))
        out["sequential"].append(seq)
        for n in counts if r % 2 == 0 else list(reversed(counts)):
            chosen = hosts[:n]
            clear(chosen)
            out["parallel"].append({"round": r, **parallel(chosen)})
            out["noop"].append({"round": r, **parallel(chosen)})
    out["process_s"] = time.perf_counter() - T0
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
