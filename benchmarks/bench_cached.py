"""2. Cached compile: a blob OpenVINO wrote itself versus the blob ``warm`` published.

Two cache directories for the same model path: one filled by a raw OpenVINO
compile, one by ``ovcache warm``. Then the same serving-style call,
``compile_model(path, "CPU", {"CACHE_DIR": dir})``, runs in fresh processes
against each, interleaved (ABBA). Both must report ``LOADED_FROM_CACHE=True``;
since the blob is OpenVINO's own bytes in both, the times should agree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchlib import Context, describe_model, interleave, median_diff_ci, ms, probe, spawn, summary, table

NAME = "cached"
TITLE = "Cached compile: OpenVINO's own cache vs the cache `warm` produced"

# (label, size_mb, seed, layers, full repeats, quick repeats) - the same models as the cold benchmark
MODELS = [
    ("mlp-6mb", 6.0, 6, 64, 20, 5),
    ("mlp-64mb", 64.0, 64, 64, 15, 3),
]


def _blob_identity(cache_dir: Path) -> dict[str, list[int]]:
    out = {}
    for name in sorted(os.listdir(cache_dir)):
        if name.endswith(".blob"):
            st = os.stat(cache_dir / name)
            out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def run(ctx: Context) -> dict[str, Any]:
    out: dict[str, Any] = {"models": []}
    for label, size_mb, seed, layers, full, quick in MODELS:
        model = ctx.model("repo", label, size_mb, seed, layers)
        repeats = ctx.repeats(full, quick)
        ctx.log(f"cached: {label}, {repeats} fresh-process loads from each cache directory")
        out["models"].append(_one(ctx, label, model, repeats, {"size_mb": size_mb, "seed": seed, "layers": layers}))
    return out


def _one(ctx: Context, label: str, model: Path, repeats: int, params: dict[str, Any]) -> dict[str, Any]:
    problems: list[str] = []
    raw_dir = ctx.fresh(f"cached/{label}-raw")
    warm_dir = ctx.fresh(f"cached/{label}-warm")
    first, _ = probe(ctx, "compile", model=str(model), cache_dir=str(raw_dir))
    if first["loaded_from_cache"]:
        problems.append("the first raw compile claims LOADED_FROM_CACHE")
    proc = spawn(
        [
            *ctx.ovcache(),
            "warm",
            "--json",
            "-q",
            "--repository",
            str(model.parents[2]),
            "--model",
            label,
            "--cache-dir",
            str(warm_dir),
        ]
    )
    warmed = proc.json()["result"]["items"][0]
    if proc.code != 0 or warmed["status"] != "warmed":
        problems.append(f"ovcache warm: exit {proc.code}, {warmed['status']}")
    before = {"raw": _blob_identity(raw_dir), "warm": _blob_identity(warm_dir)}
    same_name = list(before["raw"]) == list(before["warm"]) == [warmed["blob"]]
    if not same_name:
        problems.append(f"blob names differ: raw {list(before['raw'])}, warm {list(before['warm'])}")
    os.sync()  # no write-back of the just-written blobs during the timed loads
    for directory in (raw_dir, warm_dir):  # one untimed load each: first-touch costs are not what we compare
        probe(ctx, "compile", model=str(model), cache_dir=str(directory))
    times: dict[str, dict[str, list[float]]] = {k: {"compile": [], "process": [], "import_core": []} for k in ("raw", "warm")}
    loaded: dict[str, list[bool]] = {"raw": [], "warm": []}
    for kind in interleave(["raw", "warm"], repeats):
        data, wall = probe(ctx, "compile", model=str(model), cache_dir=str(raw_dir if kind == "raw" else warm_dir))
        loaded[kind].append(data["loaded_from_cache"])
        times[kind]["compile"].append(data["compile_s"])
        times[kind]["process"].append(wall)
        times[kind]["import_core"].append(data["import_s"] + data["core_s"])
    after = {"raw": _blob_identity(raw_dir), "warm": _blob_identity(warm_dir)}
    verify = spawn([*ctx.ovcache(), "verify", "--json", "-q", "--cache-dir", str(warm_dir)])
    verify_summary = verify.json()["result"]["summary"]
    for kind in ("raw", "warm"):
        if not all(loaded[kind]):
            problems.append(f"{kind}: {loaded[kind].count(False)} of {len(loaded[kind])} loads were not LOADED_FROM_CACHE")
        if before[kind] != after[kind]:
            problems.append(f"{kind}: a serving load rewrote the blob")
    if verify_summary != {"ok": 1}:
        problems.append(f"ovcache verify after the loads: {verify_summary}")
    ms_raw = [x * 1000 for x in times["raw"]["compile"]]
    ms_warm = [x * 1000 for x in times["warm"]["compile"]]
    diff = median_diff_ci(ms_raw, ms_warm)
    median_raw = sorted(ms_raw)[len(ms_raw) // 2]
    return {
        "label": label,
        "params": params,
        "model": describe_model(model),
        "repeats": repeats,
        "cold_compile_ms": round(first["compile_s"] * 1000, 3),
        "warm_item": {"compile_ms": round(warmed["compile_seconds"] * 1000, 3), "blob": warmed["blob"], "size": warmed["size"]},
        "raw": {k: summary(v, 1000) for k, v in times["raw"].items()},
        "warm": {k: summary(v, 1000) for k, v in times["warm"].items()},
        "loaded_from_cache": {k: f"{sum(v)}/{len(v)}" for k, v in loaded.items()},
        "compile_diff_ms": diff,
        "process_diff_ms": median_diff_ci(
            [x * 1000 for x in times["raw"]["process"]], [x * 1000 for x in times["warm"]["process"]]
        ),
        # Equal within noise: the 95% interval of the median difference includes zero,
        # or the difference is under 5% of the raw median.
        "equal_within_noise": diff["lo"] <= 0 <= diff["hi"] or abs(diff["diff"]) < 0.05 * median_raw,
        "blobs_unchanged_by_loads": before == after,
        "same_blob_name": same_name,
        "verify_after": verify_summary,
        "problems": problems,
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: the cached load from each cache directory."""
    rows = []
    for model in result["measurements"]["models"]:
        raw, warm, d = model["raw"]["compile"], model["warm"]["compile"], model["compile_diff_ms"]
        rows.append(
            [
                f"{model['label']} ({model['model']['bytes'] / (1 << 20):.1f} MiB)",
                model["repeats"],
                f"{ms(raw, 2)} [{raw['min']:.1f}-{raw['max']:.1f}]",
                f"{ms(warm, 2)} [{warm['min']:.1f}-{warm['max']:.1f}]",
                f"{d['diff']:+.2f} ({d['lo']:+.2f} .. {d['hi']:+.2f})",
                f"{model['loaded_from_cache']['raw']} / {model['loaded_from_cache']['warm']}",
                "yes" if model["equal_within_noise"] else "no",
                f"{model['cold_compile_ms']:.1f}",
            ]
        )
    return {
        "cached": table(
            [
                "model",
                "n each",
                "raw cache",
                "warm's cache",
                "warm - raw (95% CI)",
                "LOADED_FROM_CACHE raw / warm",
                "equal within noise",
                "cold compile, for reference",
            ],
            rows,
        )
    }


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for model in result["measurements"]["models"]:
        d = model["compile_diff_ms"]
        out.append(
            {
                "what": f"cached load from warm's blob equals OpenVINO's own ({model['label']})",
                "target": "equal within noise, LOADED_FROM_CACHE every time",
                "result": f"{d['diff']:+.2f} ms (95% CI {d['lo']:+.2f} .. {d['hi']:+.2f}); {model['loaded_from_cache']['warm']} from cache",
                "met": model["equal_within_noise"] and not model["problems"],
            }
        )
    return out
