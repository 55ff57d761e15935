"""Serving libraries: optimum-intel's and OpenVINO GenAI's own load of a causal LM, cold vs after ``ovcache warm``.

Two random-weight GPT-2 causal LMs the benchmark builds offline (``samples.build_causal_lm``):
the tests' tiny one (2 layers, 32 wide) and a larger one (6 layers, 384 wide, about 43 MB of
weights). Each is loaded the way a server built on the library loads it, in a fresh
process that imports nothing of ours:

* ``optimum``: ``OVModelForCausalLM.from_pretrained(folder, device="CPU", ov_config={"CACHE_DIR": ...})``;
* ``genai, SDPA``: ``openvino_genai.LLMPipeline(folder, "CPU", CACHE_DIR=..., ATTENTION_BACKEND="SDPA")``;
* ``genai, default``: the same without ``ATTENTION_BACKEND`` (paged attention, GenAI's CPU default).

*Cold* is the first load after a deploy: an empty cache directory, which the load fills.
*After warm* is the same load once ``ovcache warm`` with the matching profile has filled a
fresh cache directory. Cold and warm alternate ABBA. Each process reports the load call alone
(after the library's import) and is timed whole, spawn to exit, by this driver. A warm load
counts as served from the cache when optimum's compiled model says ``LOADED_FROM_CACHE``, and
for GenAI (which hides its compiled model) when the load left every blob as it found it
(inode, size, mtime): GenAI's default backend replaces its blob on every load, and the table
shows that no warm-up helps it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchlib import Context, interleave, ms, spawn, summary, table

NAME = "libraries"
TITLE = "Serving libraries: optimum-intel and OpenVINO GenAI, cold vs after warm"

# (name, layers, width): the tests' tiny LM, and one whose weights are tens of MB.
MODELS = (("tiny-lm", 2, 32), ("lm-6x384", 6, 384))
LOADERS = ("optimum", "genai-sdpa", "genai-default")
LABELS = {
    "optimum": "optimum, OVModelForCausalLM",
    "genai-sdpa": "genai, SDPA",
    "genai-default": "genai, default (paged attention)",
}
# The warm-up each loader's server would run: the same library, class or pipeline and properties.
WARM_ARGS = {
    "optimum": ["--profile", "optimum", "--model-class", "OVModelForCausalLM"],
    "genai-sdpa": ["--profile", "genai", "--property", "ATTENTION_BACKEND=SDPA"],
    "genai-default": ["--profile", "genai"],
}
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

# The server's load, nothing of ours: the library, the folder, the device, CACHE_DIR.
_LOAD = r"""
import json, sys, time
from pathlib import Path

kind, folder, cache = sys.argv[1:4]

def state():
    return {p.name: (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) for p in Path(cache).glob("*.blob")}

before = state()
if kind == "optimum":
    from optimum.intel import OVModelForCausalLM
    t0 = time.perf_counter()
    model = OVModelForCausalLM.from_pretrained(folder, device="CPU", ov_config={"CACHE_DIR": cache})
    t1 = time.perf_counter()
    flag = bool(model.request.get_compiled_model().get_property("LOADED_FROM_CACHE"))
else:
    import openvino_genai
    properties = {"CACHE_DIR": cache}
    if kind == "genai-sdpa":
        properties["ATTENTION_BACKEND"] = "SDPA"
    t0 = time.perf_counter()
    openvino_genai.LLMPipeline(folder, "CPU", **properties)
    t1 = time.perf_counter()
    flag = None
after = state()
print(json.dumps({"load": t1 - t0, "flag": flag, "untouched": bool(before) and after == before}))
"""


def _build(ctx: Context, name: str, layers: int, width: int) -> Path:
    from airflow_ovcache.samples import build_causal_lm, causal_lm_missing

    folder = ctx.workdir / "libraries-repo" / name / "1"
    if not (folder / "openvino_model.xml").exists():
        why = causal_lm_missing()
        if why:
            raise RuntimeError(f"cannot build the causal LM: {why}")
        ctx.log(f"building {name} ({layers} layers, {width} wide)")
        scratch = ctx.fresh(f"libraries-torch-{name}")
        build_causal_lm(ctx.workdir / "libraries-tmp" / name, scratch, layers=layers, width=width)
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(ctx.workdir / "libraries-tmp" / name, folder)
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


def _one(ctx: Context, env: dict[str, str], folder: Path, loader: str, kind: str, index: int) -> dict[str, Any]:
    cache = ctx.fresh(f"libraries-cache-{index}")
    row: dict[str, Any] = {}
    if kind == "warm":
        repo = folder.parents[1]
        warm = spawn(
            [*ctx.ovcache(), "warm", "--repository", str(repo), "--model", folder.parent.name, "--cache-dir", str(cache)]
            + WARM_ARGS[loader]
            + ["--json", "-q"],
            env=env,
        )
        item = warm.json()["result"]["items"][0]
        if warm.code != 0 or item["status"] != "warmed":
            raise RuntimeError(f"warm ({loader}) failed: {item.get('reason')} {warm.err[-1000:]}")
        row["warm"] = warm.wall
        row["blob_mb"] = sum(p.stat().st_size for p in cache.glob("*.blob")) / 1e6
    else:
        cache.mkdir()
    served = spawn([ctx.python, "-c", _LOAD, loader, str(folder), str(cache)], env=env)
    data = served.json()
    if served.code != 0:
        raise RuntimeError(f"the {loader} load failed (exit {served.code}): {served.err[-1000:]}")
    hit = data["flag"] if loader == "optimum" else data["untouched"]
    row.update(load=data["load"], total=served.wall, hit=bool(hit) and kind == "warm")
    shutil.rmtree(cache, ignore_errors=True)
    return row


def run(ctx: Context) -> dict[str, Any]:
    env = {**os.environ, **OFFLINE}
    out: dict[str, Any] = {"models": {}, "rows": {}}
    for name, layers, width in MODELS:
        folder = _build(ctx, name, layers, width)
        weights = (folder / "openvino_model.bin").stat().st_size / 1e6
        out["models"][name] = {"layers": layers, "width": width, "weights_mb": round(weights, 1)}
        repeats = ctx.repeats(7 if name == "tiny-lm" else 5, 2)
        for loader in LOADERS:
            ctx.log(f"{name}: {loader}, {repeats} cold and {repeats} warm loads")
            runs: dict[str, list[dict[str, Any]]] = {"cold": [], "warm": []}
            for index, kind in enumerate(interleave(["cold", "warm"], repeats)):
                runs[kind].append(_one(ctx, env, folder, loader, kind, index))
            warm = runs["warm"]
            out["rows"][f"{name}/{loader}"] = {
                "model": name,
                "loader": loader,
                "repeats": repeats,
                "cold": {k: summary([r[k] for r in runs["cold"]], 1000) for k in ("load", "total")},
                "warm": {k: summary([r[k] for r in warm], 1000) for k in ("load", "total")},
                "warm_command": summary([r["warm"] for r in warm], 1000),
                "hits": sum(r["hit"] for r in warm),
                "blob_mb": round(max(r["blob_mb"] for r in warm), 1),
            }
    return out


def _ratio(cold: dict[str, Any], warm: dict[str, Any]) -> str:
    return f"{cold['median'] / warm['median']:.1f}x" if warm.get("median") else "n/a"


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table: each library's load, cold and after warm, per model."""
    m = result["measurements"]
    rows = []
    for row in m["rows"].values():
        model = m["models"][row["model"]]
        cold, warm = row["cold"], row["warm"]
        rows.append(
            [
                f"{row['model']} ({model['weights_mb']} MB weights, {row['blob_mb']} MB of blobs)",
                LABELS[row["loader"]],
                f"{ms(cold['load'])} / {ms(warm['load'])}",
                _ratio(cold["load"], warm["load"]),
                f"{ms(cold['total'])} / {ms(warm['total'])}",
                _ratio(cold["total"], warm["total"]),
                f"{row['hits']}/{row['repeats']}",
                ms(row["warm_command"]),
            ]
        )
    head = [
        "model",
        "library's load",
        "load call: cold / after warm",
        "speed-up",
        "whole process: cold / after warm",
        "speed-up",
        "after warm, served from the cache",
        "`ovcache warm` whole command",
    ]
    return {"libraries": table(head, rows)}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    return []
