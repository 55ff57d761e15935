"""4. ``verify`` of 1,000 manifest entries without load checks.

Building 1,000 entries by warming 1,000 models would spend minutes compiling
and rewriting an ever larger manifest, so the cache is built the cheap way:

1. a handful of tiny real models are warmed for real (``ovcache warm``), which
   gives real blobs, real manifest entries and the host facts;
2. each further entry is a copy of one of those model folders under a new
   ``<model>/<version>`` in the same repository, plus a copy of its blob under a
   new random ``<uint64>.blob`` name, recorded with the core's ``Entry`` and
   ``Manifest`` classes with its own checksum, blob stat, model-file stat and
   fingerprint (computed with the core's ``Fingerprinter``, which also fills the
   stat cache as a warm would).

Every entry therefore passes every check ``verify`` makes without a load check
(the copied blobs' names do not match their new model paths, which only a load
check would notice). Then ``Verifier.verify()`` is timed in a fresh process
(first call, then repeats) and ``ovcache verify --json`` end to end.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from benchlib import Context, ms, probe, spawn, summary, table

NAME = "verify"
TITLE = "`verify` of 1,000 entries (no load checks)"

ENTRIES = 1000
REAL_MODELS = 4  # warmed for real; the rest are copies
REAL_SIZE_MB = 0.05
REAL_LAYERS = 4
TARGET_S = 1.0


def build_cache(ctx: Context, entries: int) -> dict[str, Any]:
    """A model repository and a cache directory whose manifest holds ``entries`` valid entries."""
    from airflow_ovcache.core.cachedir import CacheDir

    repo = ctx.fresh("verify/repo")
    cache_dir = ctx.fresh("verify/cache")
    for k in range(REAL_MODELS):
        ctx.model("verify/repo", f"real{k}", REAL_SIZE_MB, 1000 + k, REAL_LAYERS)
    proc = spawn([*ctx.ovcache(), "warm", "--json", "-q", "--repository", str(repo), "--cache-dir", str(cache_dir)])
    if proc.code != 0:
        raise RuntimeError(f"warming the real models failed: {proc.err[-2000:]}")
    cache = CacheDir(cache_dir).check(create=False, writable=True)
    real = sorted(cache.read_manifest().entries.values(), key=lambda e: e.model)
    from cachebuild import record_copies

    places = [(f"rep{i // 10:03d}", i % 10 + 1) for i in range(entries - len(real))]
    made, slept = record_copies(cache, repo, real, places)
    blob_bytes = sum(os.stat(cache.root / e.blob).st_size for e in real)
    return {
        "repository": repo,
        "cache_dir": cache_dir,
        "real_models": len(real),
        "copied_entries": len(made),
        "manifest_bytes": cache.manifest_path.stat().st_size,
        "stat_cache_bytes": cache.stat_cache_path.stat().st_size,
        "blob_bytes_each": round(blob_bytes / len(real)),
        "model_bytes_each": sum(p.stat().st_size for p in Path(real[0].model_dir).iterdir()),
        "racy_wait_s": round(slept, 2),
        "real_model_name": real[0].model,
    }


def run(ctx: Context) -> dict[str, Any]:
    ctx.log(f"verify: building a cache with {ENTRIES} entries")
    built = build_cache(ctx, ENTRIES)
    cache_dir = str(built["cache_dir"])
    problems: list[str] = []

    processes = ctx.repeats(3, 1)
    repeats = ctx.repeats(5, 2)
    ctx.log(f"verify: in-process, {processes} fresh processes (first call + {repeats} repeats)")
    first, again, agent_import = [], [], []
    profile = None
    ov_imported = False
    for i in range(processes):
        data, _ = probe(ctx, "verify", cache_dir=cache_dir, repeats=repeats, profile=i == processes - 1)
        first.append(data["first_s"])
        again.extend(data["repeat_s"])
        agent_import.append(data["import_s"])
        ov_imported = ov_imported or data["openvino_imported"]
        profile = data["profile"] or profile
        if data["summary"] != {"ok": ENTRIES}:
            problems.append(f"in-process verify found {data['summary']}")

    runs = ctx.repeats(7, 3)
    ctx.log(f"verify: ovcache verify --json, {runs} runs (and as many with --no-device-check)")
    walls: dict[str, list[float]] = {"ovcache verify --json": [], "ovcache verify --json --no-device-check": []}
    envelope: list[float] = []
    for i in range(runs):
        for kind in walls if i % 2 == 0 else reversed(list(walls)):
            proc = spawn([*ctx.ovcache(), *kind.split()[1:], "-q", "--cache-dir", cache_dir])
            walls[kind].append(proc.wall)
            env = proc.json()
            if kind == "ovcache verify --json":
                envelope.append(env["seconds"])
            if proc.code != 0 or env["result"]["summary"] != {"ok": ENTRIES}:
                problems.append(f"{kind}: exit {proc.code}, {env['result']['summary']}")

    ctx.log("verify: one instrumented process for the breakdown (not in the timings above)")
    traced, _ = probe(ctx, "verify", cache_dir=cache_dir, repeats=1, instrument=True)
    breakdown = {"first": traced["phases"][0], "repeat": traced["phases"][1]}

    ctx.log("verify: no-op warm of one entry with the 1,000-entry manifest")
    noop, _ = probe(
        ctx,
        "noop",
        repository=str(built["repository"]),
        model=built["real_model_name"],
        cache_dir=cache_dir,
        repeats=ctx.repeats(50, 10),
    )
    if noop["statuses"] != ["unchanged"]:
        problems.append(f"no-op warm at {ENTRIES} entries: {noop['statuses']}")

    # The whole fleet-style no-op: `ovcache warm --versions all` over every entry (all unchanged).
    if ctx.quick:
        models = [f"rep{i:03d}" for i in range(10)]
        selection = [arg for name in models for arg in ("--model", name)]
    else:
        selection = []
    ctx.log(f"verify: no-op ovcache warm of {'100' if ctx.quick else 'all'} entries, one run")
    proc = spawn(
        [
            *ctx.ovcache(),
            "warm",
            "--json",
            "-q",
            "--repository",
            str(built["repository"]),
            "--versions",
            "all",
            *selection,
            "--cache-dir",
            cache_dir,
        ]
    )
    env = proc.json()
    fleet = {"items": len(env["result"]["items"]), "summary": env["result"]["summary"], "wall_ms": round(proc.wall * 1000, 1)}
    if proc.code != 0 or env["result"]["summary"]["unchanged"] != fleet["items"]:
        problems.append(f"no-op warm of all entries: exit {proc.code}, {env['result']['summary']}")
    shutil.rmtree(built["cache_dir"], ignore_errors=True)
    shutil.rmtree(built["repository"], ignore_errors=True)
    return {
        "entries": ENTRIES,
        "setup": {k: (str(v) if isinstance(v, Path) else v) for k, v in built.items()},
        "in_process": {
            "processes": processes,
            "first_call_ms": summary(first, 1000),
            "repeat_call_ms": summary(again, 1000),
            "agent_import_ms": summary(agent_import, 1000),
            "openvino_imported": ov_imported,
        },
        "command": {
            "runs": runs,
            "wall_ms": {k: summary(v, 1000) for k, v in walls.items()},
            "envelope_ms": summary(envelope, 1000),
        },
        "noop_warm_at_scale": {
            "first_call_ms": round(noop["first_s"] * 1000, 3),
            "repeat_call_ms": {k: v for k, v in summary(noop["repeat_s"], 1000, 3).items() if k != "values"},
            "statuses": noop["statuses"],
        },
        "noop_warm_all": fleet,
        "breakdown": breakdown,
        "profile": profile,
        "target_s": TARGET_S,
        "problems": problems,
    }


def _breakdown_table(breakdown: dict[str, Any]) -> str:
    first, repeat = breakdown["first"], breakdown["repeat"]
    rows = []
    for name in first["steps"]:
        s1, c1 = first["steps"][name]
        s2, c2 = repeat["steps"].get(name, [0.0, 0])
        label = ("&nbsp;&nbsp;&nbsp;&nbsp;" + name.strip()) if name.startswith("  ") else name
        rows.append([label, f"{s1 * 1000:.1f} ({c1})", f"{s2 * 1000:.1f} ({c2})"])
    rows.append(["**total**", f"{first['total'] * 1000:.1f}", f"{repeat['total'] * 1000:.1f}"])
    return table(["step", "first call in the process", "second call"], rows)


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: verify in and out of process, its steps, and its profile."""
    m = result["measurements"]
    ip, cmd = m["in_process"], m["command"]
    out = {
        "verify": table(
            ["measurement", "n", "ms", f"under {m['target_s']:g} s"],
            [
                [
                    "`Verifier.verify()`, first call in a fresh process",
                    ip["first_call_ms"]["n"],
                    ms(ip["first_call_ms"]),
                    "yes" if ip["first_call_ms"]["median"] < m["target_s"] * 1000 else "no",
                ],
                [
                    "`Verifier.verify()`, again in the same process (new `Verifier`)",
                    ip["repeat_call_ms"]["n"],
                    ms(ip["repeat_call_ms"]),
                    "yes" if ip["repeat_call_ms"]["median"] < m["target_s"] * 1000 else "no",
                ],
            ]
            + [
                [f"`{k}`, whole process", v["n"], ms(v), "yes" if v["median"] < m["target_s"] * 1000 else "no"]
                for k, v in cmd["wall_ms"].items()
            ],
        ),
        "verify.steps": _breakdown_table(m["breakdown"]),
    }
    if m.get("profile"):
        rows = [r for r in m["profile"] if r.get("by") != "cumtime"][:10]
        out["verify.profile"] = table(
            ["function", "calls", "own ms", "cumulative ms"],
            [[f"`{r['function']}`", r["calls"], f"{r['tottime'] * 1000:.1f}", f"{r['cumtime'] * 1000:.1f}"] for r in rows],
        )
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    first = m["in_process"]["first_call_ms"]["median"]
    wall = m["command"]["wall_ms"]["ovcache verify --json"]["median"]
    return [
        {
            "what": f"`Verifier.verify()` of {m['entries']} entries, no load checks (first call in a fresh process)",
            "target": f"< {m['target_s']:g} s",
            "result": f"{first:.0f} ms (repeat in-process {m['in_process']['repeat_call_ms']['median']:.0f} ms)",
            "met": first < m["target_s"] * 1000 and not m["problems"],
        },
        {
            "what": f"`ovcache verify --json` of {m['entries']} entries, whole process",
            "target": f"< {m['target_s']:g} s",
            "result": f"{wall:.0f} ms",
            "met": wall < m["target_s"] * 1000 and not m["problems"],
        },
    ]
