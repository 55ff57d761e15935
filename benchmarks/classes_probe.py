"""The Airflow side of the namespace part of the class benchmark: ``python classes_probe.py '<json args>'``.

``bench_classes.py`` starts the hosts (network namespaces, each with its own sshd and cache,
one shared model repository path and one directory store on the shared filesystem) and runs this
with the hosts' ``AIRFLOW_CONN_*`` in the environment. Every call goes through the provider's
``OvcacheHook`` over SSH, one thread per host, as the release DAG's tasks would run in parallel on
a worker. For each fleet size N, in fresh caches and a fresh store:

* per-host: N threads at once, each ``warm`` (confirmed) then ``verify`` with a load check;
* by class: the builder's ``warm``, ``store_put`` and ``verify``; then N-1 threads at once, each
  ``install`` then ``verify``.

It reports the wall time from the first call to the last host verified, the CPU-seconds the
agents used (what the hosts' sshds reaped: the agents run under them, not as this process's
children) and those the whole machine was busy meanwhile (``/proc/stat``). Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import cpu_seconds, run_together


def busy_seconds() -> float:
    """Core-seconds the machine has been busy since boot (all processes)."""
    return cpu_seconds()[1]


def agents_cpu(pids: list[int]) -> float:
    """CPU-seconds of everything the hosts' sshds have run and reaped: the agents, whatever else the machine does.

    Each session's processes are waited for by the host's sshd, so their user and system time lands
    in the listener's ``cutime``/``cstime`` (fields 16 and 17 of ``/proc/<pid>/stat``) once the
    session ends.
    """
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total += (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    return total


def in_parallel(jobs: list[Any]) -> float:
    """Run the jobs at once (one thread each); the seconds until the last finished; the first failure raises."""
    wall, _, errors = run_together(jobs)
    for error in errors:
        if error is not None:
            raise error
    return wall


def main() -> int:
    args = json.loads(sys.argv[1])
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    hosts: list[dict[str, Any]] = args["hosts"]
    model: str = args["model"]
    repository: str = args["repository"]
    store = Path(args["store"])
    out: dict[str, Any] = {"rounds": []}

    def hook(host: dict[str, Any]) -> OvcacheHook:
        return OvcacheHook(host["conn_id"], repository=repository, cache_dir=host["cache_dir"])

    def fresh(chosen: list[dict[str, Any]]) -> None:
        for host in chosen:
            shutil.rmtree(host["cache_dir"], ignore_errors=True)
        shutil.rmtree(store, ignore_errors=True)
        store.mkdir(parents=True)

    def expect(report: Any, status: str, what: str) -> None:
        got = [i.status for i in report.items]
        if got != [status]:
            raise RuntimeError(f"{what}: expected [{status}], got {got}")

    def warm_and_verify(host: dict[str, Any]) -> None:
        h = hook(host)
        expect(h.warm(models=[model], version_numbers=[1], confirm=True), "warmed", f"warm on {host['name']}")
        if h.verify(model=model, version=1, load_check=True).problems:
            raise RuntimeError(f"verify on {host['name']} failed")

    def install_and_verify(host: dict[str, Any]) -> None:
        h = hook(host)
        expect(h.install(store=str(store), models=[model], version_numbers=[1]), "installed", f"install on {host['name']}")
        if h.verify(model=model, version=1, load_check=True).problems:
            raise RuntimeError(f"verify on {host['name']} failed")

    for round_index in range(args["rounds"]):
        for n in args["counts"]:
            chosen = hosts[:n]
            modes = ("per-host", "by-class") if round_index % 2 == 0 else ("by-class", "per-host")
            for mode in modes:
                fresh(chosen)
                busy = busy_seconds()
                agents = agents_cpu(args["sshd_pids"])
                start = time.perf_counter()
                if mode == "per-host":
                    parallel = in_parallel([lambda h=h: warm_and_verify(h) for h in chosen])
                    builder = 0.0
                else:
                    builder_hook = hook(chosen[0])
                    expect(builder_hook.warm(models=[model], version_numbers=[1], confirm=True), "warmed", "warm on the builder")
                    put = builder_hook.store_put(store=str(store), model=model, version=1)
                    expect(put, "stored", "store_put on the builder")
                    if builder_hook.verify(model=model, version=1, load_check=True).problems:
                        raise RuntimeError("verify on the builder failed")
                    builder = time.perf_counter() - start
                    parallel = in_parallel([lambda h=h: install_and_verify(h) for h in chosen[1:]]) if n > 1 else 0.0
                wall = time.perf_counter() - start
                out["rounds"].append(
                    {
                        "n": n,
                        "mode": mode,
                        "wall": round(wall, 3),
                        "builder": round(builder, 3),
                        "parallel": round(parallel, 3),
                        "machine_cpu": round(busy_seconds() - busy, 2),
                        "agents_cpu": round(agents_cpu(args["sshd_pids"]) - agents, 2),
                    }
                )
                row = out["rounds"][-1]
                print(f"{mode} n={n}: {wall:.1f} s, agents {row['agents_cpu']:.1f} CPU-s", file=sys.stderr, flush=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
