"""Serving profiles: an OVMS-profile warm against a by-path warm of the same model.

One transformer-shaped IR model (``samples.build_transformer``, about 19 MB on
disk), warmed into a fresh cache directory by the whole ``ovcache warm --json``
command, process start to exit, with the ``openvino`` profile (by path) and with
the ``ovms`` profile (from an OVMS ``config.json``), interleaved. The OVMS profile
pays for OVMS's preparation (``read_model``, a ``PrePostProcessor`` putting a
layout on every input and output, ``build()``) before its compile; the table shows
the command's wall time and the compile the agent timed.

Then the load each server makes in a fresh process from the cache the warm-up
filled: ``compile_model(path)`` for by-path, and OVMS's preparation followed by
``compile_model(model)`` for the OVMS profile (the agent's own reproduction,
``core.ovms.compile_ovms``), each required to report ``LOADED_FROM_CACHE``.
"""

from __future__ import annotations

import json
from typing import Any

from benchlib import Context, interleave, ms, spawn, summary, table

NAME = "profiles"
TITLE = "Serving profiles: OVMS-profile warm vs by-path warm"

_LOAD = """
import json, sys, time
kind, model_file, cache, config = sys.argv[1:5]
import openvino as ov
t0 = time.perf_counter()
core = ov.Core()
if kind == "by-path":
    t1 = time.perf_counter()
    compiled = core.compile_model(model_file, "CPU", {"CACHE_DIR": cache})
else:
    from airflow_ovcache.core.ovms import compile_ovms, load_ovms_config
    (model,) = load_ovms_config(config)
    t1 = time.perf_counter()
    compiled, _ = compile_ovms(core, model_file, model, cache)
t2 = time.perf_counter()
print(json.dumps({"load": t2 - t1, "total": t2 - t0, "cached": bool(compiled.get_property("LOADED_FROM_CACHE"))}))
"""


def run(ctx: Context) -> dict[str, Any]:
    from airflow_ovcache.samples import build_transformer

    repo = ctx.workdir / "profiles-repo"
    model_file = repo / "encoder" / "1" / "model.xml"
    if not model_file.exists():
        build_transformer(model_file, layers=6, width=256, seq=64, seed=12)
    config = ctx.workdir / "profiles-ovms.json"
    config.write_text(json.dumps({"model_config_list": [{"config": {"name": "encoder", "base_path": str(repo / "encoder")}}]}))
    repeats = ctx.repeats(7, 2)
    warm: dict[str, dict[str, list[float]]] = {k: {"wall": [], "compile": []} for k in ("by-path", "ovms")}
    load: dict[str, dict[str, list[float]]] = {k: {"load": [], "total": []} for k in ("by-path", "ovms")}
    for index, kind in enumerate(interleave(["by-path", "ovms"], repeats)):
        cache = ctx.fresh(f"profiles-cache-{index}")
        args = [*ctx.ovcache(), "warm", "--repository", str(repo), "--cache-dir", str(cache), "--json", "-q"]
        if kind == "ovms":
            args += ["--ovms-config", str(config)]
        proc = spawn(args)
        item = proc.json()["result"]["items"][0]
        if proc.code != 0 or item["status"] != "warmed":
            raise RuntimeError(f"warm ({kind}) failed: {item.get('reason')} {proc.err[-1000:]}")
        warm[kind]["wall"].append(proc.wall)
        warm[kind]["compile"].append(item["compile_seconds"])
        served = spawn([ctx.python, "-c", _LOAD, kind, str(model_file), str(cache), str(config)]).json()
        if not served["cached"]:
            raise RuntimeError(f"the {kind} load did not come from the cache its warm-up filled")
        load[kind]["load"].append(served["load"])
        load[kind]["total"].append(served["total"])
    size_mb = sum(p.stat().st_size for p in model_file.parent.iterdir()) / 1e6
    return {
        "model": {"name": "encoder (transformer-shaped IR)", "mb": round(size_mb, 1)},
        "repeats": repeats,
        "warm": {k: {m: summary(v, 1000) for m, v in d.items()} for k, d in warm.items()},
        "load": {k: {m: summary(v, 1000) for m, v in d.items()} for k, d in load.items()},
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: warm and serving load per profile."""
    m = result["measurements"]
    w, lo = m["warm"], m["load"]
    rows = [
        [kind, ms(w[kind]["wall"]), ms(w[kind]["compile"]), ms(lo[kind]["load"]), ms(lo[kind]["total"])]
        for kind in ("by-path", "ovms")
    ]
    head = [
        "profile",
        "`ovcache warm` whole command",
        "compile (agent-timed)",
        "serving load from cache",
        "serving process after import",
    ]
    return {"profiles": table(head, rows)}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    return []
