"""The Airflow side of the fleet benchmark, in its own interpreter: ``python fleet_probe.py '<json args>'``.

``bench_fleet.py`` starts the hosts (network namespaces with their own sshd) and
runs this with ``AIRFLOW_HOME`` pointing at a scratch folder and the hosts'
``AIRFLOW_CONN_*`` in the environment. Everything goes through the provider's
``OvcacheHook`` over SSH, as a task would; the hook's transport methods are
wrapped (for this process only) to split each call into its parts. Prints one
JSON line.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()


class Split:
    """Per-thread wall time of named steps (each host-task runs in its own thread)."""

    def __init__(self) -> None:
        self.local = threading.local()

    def reset(self) -> None:
        self.local.steps = {}

    def steps(self) -> dict[str, float]:
        return dict(getattr(self.local, "steps", {}))

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        inner = getattr(owner, attr)
        split = self

        def timed(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                steps = getattr(split.local, "steps", None)
                if steps is None:
                    steps = split.local.steps = {}
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - start

        setattr(owner, attr, timed)


def main() -> int:
    args = json.loads(sys.argv[1])
    t_import = time.perf_counter()
    from airflow_ovcache.hooks.envelope import AgentRun
    from airflow_ovcache.hooks.ovcache import OvcacheHook
    from airflow_ovcache.hooks.transport_local import LocalTransport
    from airflow_ovcache.hooks.transport_ssh import SSHTransport

    import_s = time.perf_counter() - t_import
    split = Split()
    split.wrap(SSHTransport, "ssh_hook", "ssh hook (read connection)")
    split.wrap(SSHTransport, "_connect", "ssh connect (TCP, handshake, key auth)")
    split.wrap(SSHTransport, "_read", "remote session (agent start to exit)")
    split.wrap(LocalTransport, "run", "local subprocess (agent start to exit)")
    split.wrap(AgentRun, "parse", "parse JSON envelope")
    hosts: list[dict[str, Any]] = args["hosts"]
    model: str = args["model"]
    out: dict[str, Any] = {"import_s": import_s, "transport": [], "sequential": [], "parallel": [], "noop": []}

    def version_call(conn_id: str) -> dict[str, Any]:
        split.reset()
        hook = OvcacheHook(conn_id)
        start = time.perf_counter()
        run = hook.run_agent("version")
        wall = time.perf_counter() - start
        return {"wall": wall, "agent_seconds": run.seconds, "steps": split.steps(), "host": run.host}

    def warm_call(host: dict[str, Any]) -> dict[str, Any]:
        split.reset()
        hook = OvcacheHook(host["conn_id"])
        start = time.perf_counter()
        # What hook.warm() does, keeping the raw item (it has the agent's own per-item seconds).
        argv, target = hook.warm_args(models=[model], version_numbers=[1], devices=["CPU"])
        run = hook.run_agent("warm", argv, target=target)
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
            "steps": split.steps(),
        }

    def clear(chosen: list[dict[str, Any]]) -> None:
        for host in chosen:
            shutil.rmtree(host["cache_dir"], ignore_errors=True)
            Path(host["cache_dir"]).mkdir(mode=0o700)

    def parallel(chosen: list[dict[str, Any]]) -> dict[str, Any]:
        results: list[dict[str, Any] | None] = [None] * len(chosen)
        errors: list[str] = []
        barrier = threading.Barrier(len(chosen) + 1)

        def worker(i: int) -> None:
            barrier.wait()
            try:
                results[i] = warm_call(chosen[i])
            except Exception as exc:  # noqa: BLE001 - reported in the result
                errors.append(f"{chosen[i]['name']}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(chosen))]
        for thread in threads:
            thread.start()
        barrier.wait()
        start = time.perf_counter()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
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
