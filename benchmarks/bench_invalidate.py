"""8. Invalidation over up to 10,000 blobs: planning (dry run) and applying.

Same caches as the scale benchmark (``benchmarks/cachebuild.py``: ten versions
per model, every entry current). Whole ``ovcache invalidate`` commands in fresh
processes, wall time and peak RSS (``ru_maxrss``) as there:

* ``plan, keep all``: ``invalidate --dry-run`` with no retention policy: only the
  quick verify that looks for stale and foreign blobs (nothing to remove);
* ``plan, latest:2``: ``invalidate --dry-run --versions latest:2``: the same plus
  retiring 8 of every 10 versions (80% of the blobs);
* ``apply, latest:2``: ``invalidate --versions latest:2`` for real, on a fresh copy of
  the cache each time: journal the removals in the manifest, unlink each blob
  (refusing symlinks and anything outside the cache), fsync the directory, clear
  the journal. Afterwards ``ovcache verify`` must find every kept entry ``ok`` and no orphan.
"""

from __future__ import annotations

import shutil
from typing import Any

import cachebuild
from benchlib import Context, interleave, spawn_rss, summary, table

NAME = "invalidate"
TITLE = "Invalidation planning and application over 10,000 blobs"

SIZES_FULL = (100, 1000, 3000, 10000)
SIZES_QUICK = (100, 1000)
POLICY = "latest:2"


def run(ctx: Context) -> dict[str, Any]:
    sizes = SIZES_QUICK if ctx.quick else SIZES_FULL
    tmpl = cachebuild.template(ctx, max(sizes))
    out: dict[str, Any] = {"sizes": [], "policy": POLICY, "problems": []}
    for n in sizes:
        cache_dir = ctx.fresh(f"invalidate/cache-{n}")
        prepared = cachebuild.subset(ctx, tmpl, n, cache_dir)
        expect_removed = n - (n // cachebuild.VERSIONS_PER_MODEL) * 2
        repeats = ctx.repeats(5 if n < 10000 else 3, 2)
        ctx.log(f"invalidate: {n} blobs, {repeats} dry runs of each kind")
        base = [*ctx.ovcache(), "invalidate", "--json", "-q", "--cache-dir", str(cache_dir)]
        kinds = {"plan, keep all": [*base, "--dry-run"], f"plan, {POLICY}": [*base, "--dry-run", "--versions", POLICY]}
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        rss: dict[str, list[float]] = {k: [] for k in kinds}
        planned: dict[str, int] = {}
        for kind in interleave(list(kinds), repeats):
            proc = spawn_rss(kinds[kind])
            plan = (proc.json().get("result") or {}).get("plan") or {}
            walls[kind].append(proc.wall)
            rss[kind].append(proc.maxrss_mb)
            planned[kind] = len(plan.get("removals", []))
            if proc.code != 0:
                out["problems"].append(f"{kind} at {n}: exit {proc.code}")
        if planned.get("plan, keep all") != 0 or planned.get(f"plan, {POLICY}") != expect_removed:
            out["problems"].append(f"plans at {n}: {planned}, expected 0 and {expect_removed} removals")
        applies = ctx.repeats(3 if n < 10000 else 2, 1)
        ctx.log(f"invalidate: {n} blobs, {applies} applies on fresh copies")
        apply_wall, apply_rss, removed, freed = [], [], [], []
        for i in range(applies):
            if i:
                cachebuild.subset(ctx, tmpl, n, cache_dir)
            proc = spawn_rss([*base, "--versions", POLICY])
            res = proc.json().get("result") or {}
            applied = res.get("applied") or {}
            apply_wall.append(proc.wall)
            apply_rss.append(proc.maxrss_mb)
            removed.append(len(applied.get("removed", [])))
            freed.append(applied.get("bytes_freed", 0))
            if proc.code != 0 or removed[-1] != expect_removed or applied.get("skipped"):
                out["problems"].append(
                    f"apply at {n}: exit {proc.code}, removed {removed[-1]}, skipped {len(applied.get('skipped', []))}"
                )
        check = spawn_rss([*ctx.ovcache(), "verify", "--json", "-q", "--no-device-check", "--cache-dir", str(cache_dir)])
        after = (check.json().get("result") or {}).get("summary")
        if after != {"ok": n - expect_removed}:
            out["problems"].append(f"verify after apply at {n}: {after}")
        left = len(list(cache_dir.glob("*.blob")))
        out["sizes"].append(
            {
                "entries": n,
                "prepared": prepared,
                "repeats": repeats,
                "plan_wall_ms": {k: summary(v, 1000, 1) for k, v in walls.items()},
                "plan_maxrss_mb": {k: summary(v, 1, 1) for k, v in rss.items()},
                "planned_removals": planned,
                "apply": {
                    "n": applies,
                    "wall_ms": summary(apply_wall, 1000, 1),
                    "maxrss_mb": summary(apply_rss, 1, 1),
                    "removed": removed[-1],
                    "bytes_freed": freed[-1],
                    "blobs_left": left,
                    "verify_after": after,
                },
            }
        )
        shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: planning and applying at each cache size."""
    m = result["measurements"]
    rows = []
    for s in m["sizes"]:
        n = s["entries"]
        for kind, w in s["plan_wall_ms"].items():
            rows.append(
                [
                    f"{n:,}",
                    f"`{kind}` (dry run)",
                    w["n"],
                    f"{w['median']:,.0f} ({w['p25']:,.0f}-{w['p75']:,.0f})",
                    f"{w['median'] / n:.2f}",
                    f"{s['plan_maxrss_mb'][kind]['median']:.0f}",
                    s["planned_removals"].get(kind, "?"),
                ]
            )
        a = s["apply"]
        w = a["wall_ms"]
        rows.append(
            [
                f"{n:,}",
                f"`apply, {m['policy']}`",
                w["n"],
                f"{w['median']:,.0f} ({w['min']:,.0f}-{w['max']:,.0f})",
                f"{w['median'] / max(a['removed'], 1):.2f} per removal",
                f"{a['maxrss_mb']['median']:.0f}",
                f"{a['removed']} ({a['bytes_freed'] / (1 << 20):.0f} MiB)",
            ]
        )
    return {"invalidate": table(["blobs", "command", "n", "wall ms", "ms per blob", "peak RSS MB", "removals"], rows)}


def plot(result: dict[str, Any], outdir: Any) -> list[tuple[str, str]]:
    import plots

    m = result["measurements"]
    xs = [s["entries"] for s in m["sizes"]]
    fig, ax = plots.figure(1)
    for kind in m["sizes"][0]["plan_wall_ms"]:
        ax.plot(xs, [s["plan_wall_ms"][kind]["median"] / 1000 for s in m["sizes"]], marker="o", label=f"{kind} (dry run)")
    ax.plot(xs, [s["apply"]["wall_ms"]["median"] / 1000 for s in m["sizes"]], marker="s", label=f"apply, {m['policy']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("blobs (manifest entries)")
    ax.set_ylabel("wall time, whole process (s)")
    ax.set_title("ovcache invalidate")
    ax.legend(fontsize=7)
    for axis in fig.axes:
        plots.plain_numbers(axis)
    name = plots.save(fig, outdir, "invalidate.png")
    return [(name, "invalidation planning and application time against the number of blobs")]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    return []
