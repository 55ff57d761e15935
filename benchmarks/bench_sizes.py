"""6. Model size: cold compile, cached load and the agent's warm / verify paths, from 0.25 MB to 256 MB.

MLPs of eight square matmuls from ``samples.build_ir`` (fixed seeds) whose weights
total 0.25, 2, 16, 64 and 256 MB, and one transformer-shaped encoder
(``samples.build_transformer``, 12 layers, width 384), whose many small ops make
its compile slower than its cached load, as with real transformers. For each
model, kinds interleaved (every one a fresh process):

* ``raw cold compile``: ``compile_model(path, "CPU", {"CACHE_DIR": new dir})``;
* ``raw cached load``: the same call against the directory OpenVINO filled itself;
* ``ovcache warm (cold)``: the whole ``ovcache warm --json`` into a new directory;
* ``cached load after warm``: the serving-style call against the directory ``warm`` filled;
* ``no-op warm``: ``ovcache warm --json`` again (nothing changed);
* ``verify``: ``ovcache verify --json`` (no load check);
* ``verify --load-check``: the same, loading the blob in a fresh child process.

Then an extra ABBA block of only the two cached loads, for the 5% comparison.
In-process times (``compile_model`` alone) come from the probe; process times are
spawn-to-exit wall clock. ``os.sync()`` runs (untimed) after each kind that wrote
a blob, so its write-back does not land in the next measurement.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchlib import Context, describe_model, interleave, median_diff_ci, probe, spawn, summary, table

NAME = "sizes"
TITLE = "Model size: cold compile vs cached load vs `warm` / `verify`, 0.25-256 MB"

# (label, kind, size_mb, seed, layers or width, full rounds, quick rounds)
MODELS = [
    ("mlp-0.25mb", "mlp", 0.25, 11, 8, 7, 2),
    ("mlp-2mb", "mlp", 2.0, 12, 8, 7, 0),
    ("mlp-16mb", "mlp", 16.0, 13, 8, 7, 2),
    ("mlp-64mb-8l", "mlp", 64.0, 14, 8, 7, 0),
    ("mlp-256mb", "mlp", 256.0, 15, 8, 5, 0),
    ("encoder-85mb", "transformer", 0.0, 16, 384, 5, 0),
]
EXTRA_LOADS = (40, 3)  # extra ABBA rounds of the two cached loads (full, quick): small models need many to see 5%
TARGET_PCT = 5.0
KINDS = (
    "raw cold compile",
    "raw cached load",
    "ovcache warm (cold)",
    "cached load after warm",
    "no-op warm",
    "verify",
    "verify --load-check",
)


def _model(ctx: Context, label: str, kind: str, size_mb: float, seed: int, shape: int) -> Path:
    if kind == "mlp":
        return ctx.model("sizes-repo", label, size_mb, seed, shape)
    from airflow_ovcache.samples import build_transformer

    path = ctx.workdir / "sizes-repo" / label / "1" / "model.xml"
    if not path.exists():
        build_transformer(path, layers=12, width=shape, seed=seed)
    return path


def run(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"models": [], "target_pct": TARGET_PCT}
    for label, kind, size_mb, seed, shape, full, quick in MODELS:
        rounds = ctx.repeats(full, quick)
        if rounds == 0:
            continue
        model = _model(ctx, label, kind, size_mb, seed, shape)
        ctx.log(f"sizes: {label} ({describe_model(model)['bytes'] / 1e6:.1f} MB), {rounds} rounds of {len(KINDS)} kinds")
        params = {"kind": kind, "size_mb": size_mb, "seed": seed, ("layers" if kind == "mlp" else "width"): shape}
        out["models"].append(_one(ctx, label, model, rounds, params))
    return out


def _one(ctx: Context, label: str, model: Path, rounds: int, params: dict[str, Any]) -> dict[str, Any]:
    repo = model.parents[2]
    ov = ctx.ovcache()
    problems: list[str] = []
    raw_dir = ctx.fresh(f"sizes/{label}-raw")
    warm_dir = ctx.fresh(f"sizes/{label}-warm")
    first, _ = probe(ctx, "compile", model=str(model), cache_dir=str(raw_dir))
    warm_cmd = [*ov, "warm", "--json", "-q", "--repository", str(repo), "--model", label, "--cache-dir"]
    proc = spawn([*warm_cmd, str(warm_dir)])
    if proc.code != 0:
        raise RuntimeError(f"ovcache warm of {label} failed: {proc.err[-2000:]}")
    os.sync()
    for directory in (raw_dir, warm_dir):  # one untimed load each
        probe(ctx, "compile", model=str(model), cache_dir=str(directory))
    in_proc: dict[str, list[float]] = {k: [] for k in ("raw cold compile", "raw cached load", "cached load after warm")}
    walls: dict[str, list[float]] = {k: [] for k in KINDS}
    warm_compile: list[float] = []
    loaded: dict[str, list[bool]] = {"raw cached load": [], "cached load after warm": []}

    def load(kind: str) -> None:
        data, wall = probe(ctx, "compile", model=str(model), cache_dir=str(raw_dir if kind == "raw cached load" else warm_dir))
        in_proc[kind].append(data["compile_s"])
        walls[kind].append(wall)
        loaded[kind].append(data["loaded_from_cache"])

    for i, kind in enumerate(interleave(list(KINDS), rounds)):
        if kind == "raw cold compile":
            fresh = ctx.fresh(f"sizes/{label}-cold-{i}")
            data, wall = probe(ctx, "compile", model=str(model), cache_dir=str(fresh))
            in_proc[kind].append(data["compile_s"])
            walls[kind].append(wall)
            if data["loaded_from_cache"]:
                problems.append(f"cold compile {i} claims LOADED_FROM_CACHE")
            shutil.rmtree(fresh)
            os.sync()
        elif kind in loaded:
            load(kind)
        elif kind == "ovcache warm (cold)":
            fresh = ctx.fresh(f"sizes/{label}-warm-{i}")
            proc = spawn([*warm_cmd, str(fresh)])
            item = proc.json()["result"]["items"][0]
            walls[kind].append(proc.wall)
            warm_compile.append(item.get("compile_seconds") or 0.0)
            if proc.code != 0 or item["status"] != "warmed":
                problems.append(f"cold warm {i}: exit {proc.code}, {item['status']}")
            shutil.rmtree(fresh)
            os.sync()
        else:
            argv = {
                "no-op warm": [*warm_cmd, str(warm_dir)],
                "verify": [*ov, "verify", "--json", "-q", "--cache-dir", str(warm_dir)],
                "verify --load-check": [*ov, "verify", "--json", "-q", "--load-check", "--cache-dir", str(warm_dir)],
            }[kind]
            proc = spawn(argv)
            res = proc.json()["result"]
            walls[kind].append(proc.wall)
            if kind == "no-op warm" and res["summary"].get("unchanged") != 1:
                problems.append(f"no-op warm {i}: {res['summary']}")
            if kind.startswith("verify") and res["summary"] != {"ok": 1}:
                problems.append(f"{kind} {i}: {res['summary']}")
    for kind in interleave(["raw cached load", "cached load after warm"], ctx.repeats(*EXTRA_LOADS)):
        load(kind)
    for kind, values in loaded.items():
        if not all(values):
            problems.append(f"{kind}: {values.count(False)} of {len(values)} loads not LOADED_FROM_CACHE")
    raw_ms = [x * 1000 for x in in_proc["raw cached load"]]
    warm_ms = [x * 1000 for x in in_proc["cached load after warm"]]
    diff = median_diff_ci(raw_ms, warm_ms)
    raw_median = summary(raw_ms)["median"]
    blob_bytes = sum(b.stat().st_size for b in warm_dir.glob("*.blob"))
    shutil.rmtree(raw_dir, ignore_errors=True)
    shutil.rmtree(warm_dir, ignore_errors=True)
    return {
        "label": label,
        "params": params,
        "model": describe_model(model),
        "rounds": rounds,
        "blob_bytes": blob_bytes,
        "first_compile_ms": round(first["compile_s"] * 1000, 2),
        "in_process_ms": {k: summary(v, 1000, 2) for k, v in in_proc.items()},
        "process_ms": {k: summary(v, 1000, 1) for k, v in walls.items()},
        "warm_compile_ms": summary(warm_compile, 1000, 1),
        "loaded_from_cache": {k: f"{sum(v)}/{len(v)}" for k, v in loaded.items()},
        "load_diff_ms": diff,
        "load_diff_pct": round(100 * diff["diff"] / raw_median, 2) if raw_median else None,
        "load_diff_ci_pct": [round(100 * diff["lo"] / raw_median, 2), round(100 * diff["hi"] / raw_median, 2)]
        if raw_median
        else None,
        "problems": problems,
    }


def _mb(model: dict[str, Any]) -> float:
    return model["model"]["bytes"] / 1e6


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: compile, cached load and agent commands per model size."""
    m = result["measurements"]
    rows = []
    for model in m["models"]:
        ip, pr = model["in_process_ms"], model["process_ms"]
        rows.append(
            [
                f"{model['label']} ({_mb(model):,.1f} MB), {model['rounds']} rounds",
                f"{ip['raw cold compile']['median']:,.1f}",
                f"{ip['raw cached load']['median']:,.1f}",
                f"{ip['cached load after warm']['median']:,.1f}",
                f"{model['load_diff_pct']:+.1f}% ({model['load_diff_ci_pct'][0]:+.1f} .. {model['load_diff_ci_pct'][1]:+.1f})",
                f"{pr['ovcache warm (cold)']['median']:,.0f}",
                f"{pr['no-op warm']['median']:,.0f}",
                f"{pr['verify']['median']:,.0f}",
                f"{pr['verify --load-check']['median']:,.0f}",
            ]
        )
    return {
        "sizes": table(
            [
                "model",
                "cold `compile_model`",
                "cached load, OpenVINO's own cache",
                "cached load after `warm`",
                "after warm vs own (95% CI)",
                "`ovcache warm` (cold) process",
                "no-op `warm` process",
                "`verify` process",
                "`verify --load-check` process",
            ],
            rows,
        )
    }


def plot(result: dict[str, Any], outdir: Any) -> list[tuple[str, str]]:
    import plots

    m = result["measurements"]
    mlps = [mo for mo in m["models"] if mo["params"]["kind"] == "mlp"]
    others = [mo for mo in m["models"] if mo["params"]["kind"] != "mlp"]
    fig, (ax1, ax2) = plots.figure(2)
    series1 = [
        ("raw cold compile", "in_process_ms", "cold compile_model"),
        ("raw cached load", "in_process_ms", "cached load, OpenVINO's own cache"),
        ("cached load after warm", "in_process_ms", "cached load after ovcache warm"),
    ]
    series2 = [
        ("raw cold compile", "serving process, cold"),
        ("raw cached load", "serving process, cached"),
        ("ovcache warm (cold)", "ovcache warm, cold"),
        ("no-op warm", "ovcache warm, no-op"),
        ("verify", "ovcache verify"),
        ("verify --load-check", "ovcache verify --load-check"),
    ]
    colors = {}
    for key, field, label in series1:
        (line,) = ax1.plot([_mb(mo) for mo in mlps], [mo[field][key]["median"] for mo in mlps], marker="o", label=label)
        colors[key] = line.get_color()
        if others:
            ax1.plot(
                [_mb(mo) for mo in others],
                [mo[field][key]["median"] for mo in others],
                ls="",
                marker="D",
                mfc="none",
                color=line.get_color(),
            )
    for key, label in series2:
        (line,) = ax2.plot([_mb(mo) for mo in mlps], [mo["process_ms"][key]["median"] for mo in mlps], marker="o", label=label)
        if others:
            ax2.plot(
                [_mb(mo) for mo in others],
                [mo["process_ms"][key]["median"] for mo in others],
                ls="",
                marker="D",
                mfc="none",
                color=line.get_color(),
            )
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("model files (MB)")
        ax.legend(fontsize=7)
    ax1.set_ylabel("compile_model, in process (ms)")
    ax2.set_ylabel("whole process (ms)")
    ax1.set_title("OpenVINO compile vs cached load")
    ax2.set_title("commands, fresh process")
    note = "circles: MLPs (8 matmuls); hollow diamonds: transformer-shaped encoder" if others else None
    for axis in fig.axes:
        plots.plain_numbers(axis)
    name = plots.save(fig, outdir, "sizes.png", note)
    return [(name, "compile, cached load and agent command times against model size")]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    out = []
    for mo in m["models"]:
        out.append(
            {
                "what": f"serving-style cached load after `warm` vs OpenVINO's own cached load ({mo['label']}, {_mb(mo):,.1f} MB)",
                "target": f"within {m['target_pct']:g}% (median), LOADED_FROM_CACHE every time",
                "result": f"{mo['load_diff_pct']:+.1f}% (95% CI {mo['load_diff_ci_pct'][0]:+.1f} .. {mo['load_diff_ci_pct'][1]:+.1f}); "
                f"{mo['in_process_ms']['cached load after warm']['median']:.1f} vs {mo['in_process_ms']['raw cached load']['median']:.1f} ms",
                "met": mo["load_diff_pct"] is not None and mo["load_diff_pct"] <= m["target_pct"] and not mo["problems"],
            }
        )
    return out
