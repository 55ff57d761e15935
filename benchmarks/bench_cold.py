"""1. Cold compile: raw OpenVINO versus ``warm`` into a fresh cache directory.

Three kinds of run, each in a fresh process against its own new cache directory,
interleaved:

* ``raw``: ``import openvino; ov.Core().compile_model(path, "CPU", {"CACHE_DIR": dir})``;
* ``warm``: ``Warmer.warm`` in a fresh process, every step timed by wrappers
  around the core's functions (so the overhead can be split into its parts);
* ``cli``: the whole ``ovcache warm --json`` command, process start to exit.

Like for like, the raw total is ``import openvino`` + ``ov.Core()`` +
``compile_model`` (what a fresh serving process pays), and the warm total is
``Warmer.warm``, which pays the same three lazily inside; the *agent overhead*
is the difference of their medians. The warm's own ``compile_model`` is shorter
than the raw one because the warm loads the CPU plugin earlier, when it asks the
device whether it can cache; the raw call loads it inside ``compile_model``.
"""

from __future__ import annotations

import shutil
from typing import Any

from benchlib import Context, describe_model, interleave, median_diff_ci, ms, probe, spawn, summary, table

NAME = "cold"
TITLE = "Cold compile: raw OpenVINO vs `warm`"

# (label, size_mb, seed, layers, full repeats, quick repeats)
MODELS = [
    ("mlp-6mb", 6.0, 6, 64, 15, 3),
    ("mlp-64mb", 64.0, 64, 64, 9, 2),
]


def run(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"models": []}
    for label, size_mb, seed, layers, full, quick in MODELS:
        model = ctx.model("repo", label, size_mb, seed, layers)
        repeats = ctx.repeats(full, quick)
        ctx.log(f"cold: {label}, {repeats} runs each of raw / warm / cli")
        out["models"].append(_one(ctx, label, model, repeats, {"size_mb": size_mb, "seed": seed, "layers": layers}))
    return out


def _one(ctx: Context, label: str, model: Any, repeats: int, params: dict[str, Any]) -> dict[str, Any]:
    repo = model.parents[2]
    raw: dict[str, list[float]] = {"total": [], "compile": [], "import_core": [], "process": []}
    warm: dict[str, list[float]] = {"warm": [], "compile": [], "openvino": [], "overhead": [], "agent_import": [], "process": []}
    phases: dict[str, list[float]] = {}
    cli: dict[str, list[float]] = {"process": [], "item": [], "compile": []}
    blobs: set[str] = set()
    problems: list[str] = []
    for i, kind in enumerate(interleave(["raw", "warm", "cli"], repeats)):
        cache_dir = ctx.fresh(f"cold/{label}-{kind}-{i}")  # every run creates its own cache directory, as a first deploy does
        if kind == "raw":
            data, wall = probe(ctx, "compile", model=str(model), cache_dir=str(cache_dir))
            if data["loaded_from_cache"]:
                problems.append(f"raw run {i} loaded from cache")
            blobs.update(data["blobs"])
            raw["total"].append(data["import_s"] + data["core_s"] + data["compile_s"])
            raw["compile"].append(data["compile_s"])
            raw["import_core"].append(data["import_s"] + data["core_s"])
            raw["process"].append(wall)
        elif kind == "warm":
            data, wall = probe(ctx, "warm", repository=str(repo), model=label, cache_dir=str(cache_dir))
            if data["status"] != "warmed":
                problems.append(f"warm run {i}: {data['status']} {data['reason']}")
            blobs.add(data["blob"])
            compile_s = data["phases"]["compile_model (OpenVINO)"]
            openvino_s = data["phases"]["openvino import + Core()"]
            warm["warm"].append(data["warm_s"])
            warm["compile"].append(compile_s)
            warm["openvino"].append(openvino_s)
            warm["overhead"].append(data["warm_s"] - compile_s - openvino_s)
            warm["agent_import"].append(data["import_s"])
            warm["process"].append(wall)
            accounted = 0.0
            for name, seconds in data["phases"].items():
                phases.setdefault(name, []).append(seconds)
                accounted += seconds
            phases.setdefault("other (unaccounted)", []).append(data["warm_s"] - accounted)
        else:
            proc = spawn(
                [
                    *ctx.ovcache(),
                    "warm",
                    "--json",
                    "-q",
                    "--repository",
                    str(repo),
                    "--model",
                    label,
                    "--cache-dir",
                    str(cache_dir),
                ]
            )
            env = proc.json()
            item = env["result"]["items"][0]
            if proc.code != 0 or item["status"] != "warmed":
                problems.append(f"cli run {i}: exit {proc.code} {item['status']}")
            blobs.add(item["blob"])
            cli["process"].append(proc.wall)
            cli["item"].append(item["seconds"])
            cli["compile"].append(item["compile_seconds"])
        shutil.rmtree(cache_dir, ignore_errors=True)
    return {
        "label": label,
        "params": params,
        "model": describe_model(model),
        "repeats": repeats,
        "raw": {k: summary(v, 1000) for k, v in raw.items()},
        "warm": {k: summary(v, 1000) for k, v in warm.items()},
        "warm_phases": {k: summary(v, 1000, 3) for k, v in phases.items()},
        "cli": {k: summary(v, 1000) for k, v in cli.items()},
        "overhead_ms": median_diff_ci([x * 1000 for x in raw["total"]], [x * 1000 for x in warm["warm"]]),
        "process_overhead_ms": median_diff_ci([x * 1000 for x in raw["process"]], [x * 1000 for x in cli["process"]]),
        "compile_diff_ms": median_diff_ci([x * 1000 for x in raw["compile"]], [x * 1000 for x in warm["compile"]]),
        "blob_names": sorted(blobs),
        "same_blob_name": len(blobs) == 1,
        "problems": problems,
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: the cold-compile comparison and, per model, where a cold warm spends its time."""
    m = result["measurements"]
    rows = []
    for model in m["models"]:
        raw, warm, cli, d, p = model["raw"], model["warm"], model["cli"], model["overhead_ms"], model["process_overhead_ms"]
        label = f"{model['label']} ({model['model']['bytes'] / (1 << 20):.1f} MiB, {model['params']['layers']} layers), n={model['repeats']}"
        rows.append(
            [
                label,
                ms(raw["total"]),
                ms(warm["warm"]),
                f"{d['diff']:+.1f} ({d['lo']:+.1f} .. {d['hi']:+.1f})",
                ms(raw["process"]),
                ms(cli["process"]),
                f"{p['diff']:+.1f} ({p['lo']:+.1f} .. {p['hi']:+.1f})",
            ]
        )
    out = {
        "cold": table(
            [
                "model",
                "raw: import + Core + `compile_model`",
                "`Warmer.warm`",
                "agent overhead (95% CI)",
                "raw process",
                "`ovcache warm` process",
                "difference (95% CI)",
            ],
            rows,
        )
    }
    for model in m["models"]:
        rows = [[name, ms(stat, 2)] for name, stat in model["warm_phases"].items()]
        out[f"cold.steps.{model['label']}"] = table(["step", "ms"], rows)
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    return []
