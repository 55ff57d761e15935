"""7. ``verify``, ``status`` and no-op ``warm`` as the cache grows to 10,000 entries: time and peak memory.

The caches are built as ``benchmarks/cachebuild.py`` says: a few tiny real
models warmed for real, the rest copies of their folders and blobs under new
names with real manifest entries (checksums, stats, fingerprints, stat cache),
ten versions per model. Each size is its own cache directory holding exactly
that many entries.

Every measurement is a whole ``ovcache`` command in a fresh process, as a
nightly job or a deploy hook runs it: wall time from spawn to exit, taken by the
parent, and the child's peak resident set (``ru_maxrss`` from ``wait4``). Kinds,
interleaved at each size:

* ``verify``: ``ovcache verify --json`` (no load checks; the device check is on,
  which imports OpenVINO once);
* ``verify --no-device-check``: the same without it (no OpenVINO import);
* ``status``: ``ovcache status --json`` (manifest and one stat per blob);
* ``no-op warm, one model``: ``ovcache warm --json --model m0000 --version-number 1``
  of one unchanged entry against the whole manifest (a release of one model on a big cache).

Then once per size, ``ovcache warm --versions all`` over every model of the cache
(all unchanged): the cost of re-running a fleet warm-up that has nothing to do.
"""

from __future__ import annotations

import shutil
from typing import Any

import cachebuild
from benchlib import Context, interleave, probe, spawn_rss, summary, table

NAME = "scale"
TITLE = "`verify`, `status` and no-op `warm` as the cache grows to 10,000 entries"

SIZES_FULL = (100, 1000, 3000, 10000)
SIZES_QUICK = (100, 1000)
TARGET_S = 5.0
TARGET_MB = 200.0
TARGET_ENTRIES = 10000
NOOP_TARGET_MS = 10.0  # per entry: "milliseconds per entry, not a compile"


def _models_of(tmpl: cachebuild.Template, n: int) -> list[str]:
    return sorted({key.split("/", 1)[0] for key in tmpl.keys[:n]})


def run(ctx: Context) -> dict[str, Any]:
    sizes = SIZES_QUICK if ctx.quick else SIZES_FULL
    tmpl = cachebuild.template(ctx, max(sizes))
    out: dict[str, Any] = {"sizes": [], "template": tmpl.info, "problems": []}
    for n in sizes:
        cache_dir = ctx.fresh(f"scale/cache-{n}")
        prepared = cachebuild.subset(ctx, tmpl, n, cache_dir)
        repeats = ctx.repeats(5 if n < 10000 else 4, 2)
        ctx.log(f"scale: {n} entries ({prepared['prepare_s']:.1f}s to prepare), {repeats} runs of each kind")
        base = [*ctx.ovcache()]
        kinds = {
            "verify": [*base, "verify", "--json", "-q", "--cache-dir", str(cache_dir)],
            "verify --no-device-check": [*base, "verify", "--json", "-q", "--no-device-check", "--cache-dir", str(cache_dir)],
            "status": [*base, "status", "--json", "-q", "--cache-dir", str(cache_dir)],
            "no-op warm, one model": [
                *base,
                "warm",
                "--json",
                "-q",
                "--repository",
                str(tmpl.repository),
                "--model",
                tmpl.info["real_model_name"],
                "--version-number",
                "1",
                "--cache-dir",
                str(cache_dir),
            ],
        }
        walls: dict[str, list[float]] = {k: [] for k in kinds}
        rss: dict[str, list[float]] = {k: [] for k in kinds}
        envelope: dict[str, list[float]] = {k: [] for k in kinds}
        for kind in interleave(list(kinds), repeats):
            proc = spawn_rss(kinds[kind])
            env = proc.json()
            walls[kind].append(proc.wall)
            rss[kind].append(proc.maxrss_mb)
            envelope[kind].append(env.get("seconds") or 0.0)
            res = env.get("result") or {}
            if kind.startswith("verify") and (proc.code != 0 or res.get("summary") != {"ok": n}):
                out["problems"].append(f"{kind} at {n}: exit {proc.code}, {res.get('summary')}")
            elif kind == "status" and (proc.code != 0 or len(res.get("entries", [])) != n or res.get("orphans")):
                out["problems"].append(f"status at {n}: exit {proc.code}, {len(res.get('entries', []))} entries")
            elif kind.startswith("no-op") and (proc.code != 0 or res.get("summary", {}).get("unchanged") != 1):
                out["problems"].append(f"{kind} at {n}: exit {proc.code}, {res.get('summary')}")
        models = _models_of(tmpl, n)
        selection = [arg for m in models for arg in ("--model", m)]
        ctx.log(f"scale: no-op warm of all {n} entries ({len(models)} models), one run")
        proc = spawn_rss(
            [
                *base,
                "warm",
                "--json",
                "-q",
                "--repository",
                str(tmpl.repository),
                "--versions",
                "all",
                *selection,
                "--cache-dir",
                str(cache_dir),
            ]
        )
        res = proc.json().get("result") or {}
        if proc.code != 0 or (res.get("summary") or {}).get("unchanged") != n:
            out["problems"].append(f"no-op warm of all at {n}: exit {proc.code}, {res.get('summary')}")
        out["sizes"].append(
            {
                "entries": n,
                "prepared": prepared,
                "repeats": repeats,
                "wall_ms": {k: summary(v, 1000, 1) for k, v in walls.items()},
                "maxrss_mb": {k: summary(v, 1, 1) for k, v in rss.items()},
                "envelope_ms": {k: summary(v, 1000, 1) for k, v in envelope.items()},
                "noop_warm_all": {
                    "items": len(res.get("items", [])),
                    "summary": res.get("summary"),
                    "wall_ms": round(proc.wall * 1000, 1),
                    "per_entry_ms": round(proc.wall * 1000 / max(n, 1), 3),
                    "maxrss_mb": round(proc.maxrss_mb, 1),
                },
            }
        )
        if n == max(sizes):
            ctx.log(f"scale: one instrumented ovcache verify at {n} entries (time and memory per step; not in the timings above)")
            phases, _ = probe(ctx, "cli_phases", argv=["verify", "--json", "-q", "--cache-dir", str(cache_dir)])
            out["phases"] = {"entries": n, **phases}
        shutil.rmtree(cache_dir, ignore_errors=True)
    out["targets"] = {"seconds": TARGET_S, "mb": TARGET_MB, "entries": TARGET_ENTRIES, "noop_ms_per_entry": NOOP_TARGET_MS}
    return out


KINDS = ("verify", "verify --no-device-check", "status", "no-op warm, one model")


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: each command at each cache size, and the marked steps of one verify."""
    m = result["measurements"]
    rows = []
    for s in m["sizes"]:
        n = s["entries"]
        for kind in KINDS:
            w, r = s["wall_ms"][kind], s["maxrss_mb"][kind]
            rows.append(
                [
                    f"{n:,}",
                    f"`{kind}`",
                    w["n"],
                    f"{w['median']:,.0f} ({w['p25']:,.0f}-{w['p75']:,.0f})",
                    f"{w['median'] / n:.2f}",
                    f"{r['median']:.0f}",
                ]
            )
        a = s["noop_warm_all"]
        rows.append(
            [
                f"{n:,}",
                "`no-op warm --versions all` (every entry)",
                1,
                f"{a['wall_ms']:,.0f}",
                f"{a['per_entry_ms']:.2f}",
                f"{a['maxrss_mb']:.0f}",
            ]
        )
    out = {"scale": table(["entries", "command", "n", "wall ms", "ms per entry", "peak RSS MB"], rows)}
    if m.get("phases"):
        out["scale.phases"] = _phases_table(m["phases"])
    return out


def _phases_table(ph: dict[str, Any]) -> str:
    """Where one verify of the biggest cache spends its time and memory (marks: ``> step`` opens, ``< step`` closes)."""
    root: dict[str, Any] = {"children": []}
    stack = [root]
    for t, name, rss, hwm in ph["marks"]:
        if name.startswith("> "):
            node = {"name": name[2:], "start": t, "rss0": rss, "children": []}
            stack[-1]["children"].append(node)
            stack.append(node)
        elif name.startswith("< "):
            node = stack.pop()
            node.update(end=t, rss1=rss, hwm=hwm)
        else:
            stack[-1]["children"].append({"name": name, "at": t, "rss1": rss, "hwm": hwm, "children": []})
    rows: list[list[Any]] = []
    indent = "&nbsp;&nbsp;&nbsp;&nbsp;"

    def emit(node: dict[str, Any], depth: int) -> None:
        if "at" in node:
            rows.append([node["name"], f"{node['at']:.2f}", "", f"{node['rss1'] / 1024:.0f}", f"{node['hwm'] / 1024:.0f}"])
            return
        ms = (node["end"] - node["start"]) * 1000
        rows.append(
            [
                indent * depth + node["name"],
                f"{node['start']:.2f}-{node['end']:.2f}",
                f"{ms:,.0f}",
                f"{node['rss0'] / 1024:.0f} -> {node['rss1'] / 1024:.0f}",
                f"{node['hwm'] / 1024:.0f}",
            ]
        )
        for child in node["children"]:
            emit(child, depth + 1)
        if node["children"]:
            inner = sum((c["end"] - c["start"]) * 1000 for c in node["children"] if "end" in c)
            rest = (
                "per-entry checks (with the device check's OpenVINO import)" if node["name"] == "Verifier.verify" else "the rest"
            )
            rows.append([indent * (depth + 1) + f"*{rest}, by difference*", "", f"{ms - inner:,.0f}", "", ""])

    for node in root["children"]:
        emit(node, 0)
    return table(["step", "s", "ms", "RSS before -> after", "peak so far"], rows)


def plot(result: dict[str, Any], outdir: Any) -> list[tuple[str, str]]:
    import plots

    m = result["measurements"]
    xs = [s["entries"] for s in m["sizes"]]
    fig, (ax1, ax2) = plots.figure(2)
    for kind in KINDS:
        ax1.plot(xs, [s["wall_ms"][kind]["median"] / 1000 for s in m["sizes"]], marker="o", label=kind)
        ax2.plot(xs, [s["maxrss_mb"][kind]["median"] for s in m["sizes"]], marker="o", label=kind)
    ax1.plot(xs, [s["noop_warm_all"]["wall_ms"] / 1000 for s in m["sizes"]], marker="s", ls="--", label="no-op warm, every entry")
    ax2.plot(xs, [s["noop_warm_all"]["maxrss_mb"] for s in m["sizes"]], marker="s", ls="--", label="no-op warm, every entry")
    ax1.axhline(m["targets"]["seconds"], color="red", lw=0.8, ls=":", label=f"target {m['targets']['seconds']:g} s")
    ax2.axhline(m["targets"]["mb"], color="red", lw=0.8, ls=":", label=f"target {m['targets']['mb']:g} MB")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("manifest entries")
    ax1.set_yscale("log")
    ax1.set_ylabel("wall time, whole process (s)")
    ax2.set_ylabel("peak RSS (MB)")
    ax2.set_ylim(bottom=0)
    ax1.set_title("time")
    ax2.set_title("peak memory")
    ax1.legend(fontsize=7)
    for axis in fig.axes:
        plots.plain_numbers(axis)
    name = plots.save(fig, outdir, "scale.png")
    return [(name, "verify, status and no-op warm time and peak RSS against the number of cache entries")]


def _at(m: dict[str, Any], entries: int) -> dict[str, Any] | None:
    for s in m["sizes"]:
        if s["entries"] == entries:
            return s
    return None


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    biggest = _at(m, m["targets"]["entries"]) or m["sizes"][-1]
    n = biggest["entries"]
    out = []
    for kind in ("verify", "verify --no-device-check"):
        w, r = biggest["wall_ms"][kind]["median"], biggest["maxrss_mb"][kind]["median"]
        out.append(
            {
                "what": f"`ovcache {kind.replace('verify', 'verify --json')}` of {n:,} entries, no load checks, whole process",
                "target": f"< {m['targets']['seconds']:g} s and < {m['targets']['mb']:g} MB peak RSS",
                "result": f"{w / 1000:.2f} s, {r:.0f} MB",
                "met": w < m["targets"]["seconds"] * 1000 and r < m["targets"]["mb"] and not m["problems"],
            }
        )
    a = biggest["noop_warm_all"]
    out.append(
        {
            "what": f"no-op `ovcache warm --versions all` of {n:,} unchanged entries",
            "target": f"milliseconds per entry (< {m['targets']['noop_ms_per_entry']:g} ms), no compile",
            "result": f"{a['per_entry_ms']:.2f} ms per entry ({a['wall_ms'] / 1000:.1f} s; {a['summary']})",
            "met": a["per_entry_ms"] < m["targets"]["noop_ms_per_entry"] and (a["summary"] or {}).get("warmed") == 0,
        }
    )
    return out
