"""11. What evidence from the server's side costs in a 10,000-entry ``verify`` and ``status``.

Since envelope schema 2 every ``verify`` and ``status`` row carries the entry's
evidence (was its blob read since it was published?): one ``lstat`` per blob and
one read of ``/proc/self/mountinfo`` per run, plus the bigger JSON. This
measures that cost two ways on the cache ``benchmarks/cachebuild.py`` builds:

* in a fresh process, ``EvidenceReader.for_entry`` over every entry of the
  manifest (the evidence alone, per entry);
* whole commands, interleaved: this agent's ``ovcache verify --json`` and
  ``ovcache status --json`` against the same commands of the agent as it was
  before evidence (the package tree of git commit ``BASE``, run from an extracted
  copy), on the same cache, so the difference is what evidence adds. The
  verify targets (10,000 entries under 5 s and 200 MB peak RSS) must still hold.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import cachebuild
from benchlib import REPO_DIR, Context, interleave, ms, spawn, spawn_rss, summary, table

NAME = "evidence"
TITLE = "Evidence from the server's side: its cost in a 10,000-entry `verify`"

BASE = "6910028"  # the last commit before evidence (envelope schema 1)
ENTRIES_FULL = 10000
ENTRIES_QUICK = 1000
TARGET_S = 5.0
TARGET_MB = 200.0

_IN_PROCESS = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.evidence import EvidenceReader
cache = CacheDir(Path(sys.argv[1])).check(create=False, writable=False)
entries = cache.read_manifest().select()
t1 = time.perf_counter()
reader = EvidenceReader(cache.root)
t2 = time.perf_counter()
states = {}
for entry in entries:
    state = reader.for_entry(entry).state
    states[state] = states.get(state, 0) + 1
t3 = time.perf_counter()
print(json.dumps({"entries": len(entries), "mount_ms": (t2 - t1) * 1000, "evidence_ms": (t3 - t2) * 1000, "states": states}))
"""


def _base_tree(ctx: Context) -> Any:
    """The agent package as it was at ``BASE``, extracted under the work directory."""
    dest = ctx.fresh("evidence/base")
    dest.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO_DIR), "archive", BASE, "airflow_ovcache"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run(ctx: Context) -> dict[str, Any]:
    n = ENTRIES_QUICK if ctx.quick else ENTRIES_FULL
    tmpl = cachebuild.template(ctx, n)
    cache_dir = ctx.fresh(f"evidence/cache-{n}")
    prepared = cachebuild.subset(ctx, tmpl, n, cache_dir)
    base_tree = _base_tree(ctx)
    out: dict[str, Any] = {"entries": n, "prepared": prepared, "base": BASE, "problems": []}

    ctx.log(f"evidence: in-process evidence over {n} entries")
    inproc = [spawn([sys.executable, "-c", _IN_PROCESS, str(cache_dir)]).json() for _ in range(ctx.repeats(5, 2))]
    out["in_process"] = {
        "evidence_ms": summary([r["evidence_ms"] for r in inproc], 1, 2),
        "mount_ms": summary([r["mount_ms"] for r in inproc], 1, 3),
        "per_entry_us": summary([r["evidence_ms"] * 1000 / max(r["entries"], 1) for r in inproc], 1, 2),
        "states": inproc[0]["states"],
    }

    new = [*ctx.ovcache()]
    old_env = {**os.environ, "PYTHONPATH": str(base_tree)}
    old = [sys.executable, "-m", "airflow_ovcache.cli.main"]
    # The old agent runs from its own tree (``python -m`` puts the working directory first on sys.path).
    kinds: dict[str, tuple[list[str], dict[str, str] | None, Any]] = {
        "verify": ([*new, "verify", "--json", "-q", "--cache-dir", str(cache_dir)], None, None),
        f"verify, agent at {BASE}": ([*old, "verify", "--json", "-q", "--cache-dir", str(cache_dir)], old_env, base_tree),
        "status": ([*new, "status", "--json", "-q", "--cache-dir", str(cache_dir)], None, None),
        f"status, agent at {BASE}": ([*old, "status", "--json", "-q", "--cache-dir", str(cache_dir)], old_env, base_tree),
    }
    repeats = ctx.repeats(5, 2)
    ctx.log(f"evidence: {repeats} runs of each of {', '.join(kinds)}")
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    rss: dict[str, list[float]] = {k: [] for k in kinds}
    json_bytes: dict[str, int] = {}
    for kind in interleave(list(kinds), repeats):
        argv, env, cwd = kinds[kind]
        proc = spawn_rss(argv, env=env, cwd=cwd)
        envelope = proc.json()
        res = envelope.get("result") or {}
        walls[kind].append(proc.wall)
        rss[kind].append(proc.maxrss_mb)
        json_bytes[kind] = len(proc.out)
        if kind.startswith("verify") and (proc.code != 0 or res.get("summary") != {"ok": n}):
            out["problems"].append(f"{kind}: exit {proc.code}, {res.get('summary')}")
        if kind.startswith("status") and (proc.code != 0 or len(res.get("entries", [])) != n):
            out["problems"].append(f"{kind}: exit {proc.code}, {len(res.get('entries', []))} entries")
        rows = res.get("entries", [])
        with_evidence = all(isinstance(r.get("evidence"), dict) for r in rows)
        if with_evidence != (kind in ("verify", "status")) or envelope.get("schema_version") != (2 if with_evidence else 1):
            out["problems"].append(f"{kind}: schema {envelope.get('schema_version')}, evidence on every row: {with_evidence}")
    out["commands"] = {
        "wall_ms": {k: summary(v, 1000, 1) for k, v in walls.items()},
        "maxrss_mb": {k: summary(v, 1, 1) for k, v in rss.items()},
        "json_bytes": json_bytes,
    }
    out["targets"] = {"seconds": TARGET_S, "mb": TARGET_MB}
    shutil.rmtree(cache_dir, ignore_errors=True)
    return out


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: the commands with and without evidence."""
    m = result["measurements"]
    cmd = m["commands"]
    rows = []
    for kind, wall in cmd["wall_ms"].items():
        rows.append(
            [
                f"`ovcache {kind}`" if "agent at" not in kind else f"`ovcache {kind}` (before evidence)",
                wall["n"],
                ms(wall),
                ms(cmd["maxrss_mb"][kind]),
                f"{cmd['json_bytes'][kind] / (1 << 20):.1f}",
            ]
        )
    return {"evidence": table(["command", "n", "wall ms", "peak RSS MB", "JSON MiB"], rows)}


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    cmd = m["commands"]
    v = cmd["wall_ms"]["verify"]["median"] / 1000
    mb = cmd["maxrss_mb"]["verify"]["median"]
    return [
        {
            "what": f"`ovcache verify --json` of {m['entries']:,} entries with evidence, whole process",
            "target": f"< {m['targets']['seconds']:g} s and < {m['targets']['mb']:g} MB peak RSS",
            "result": f"{v:.2f} s, {mb:.0f} MB (evidence {m['in_process']['per_entry_us']['median']:.1f} µs per entry)",
            "met": v < m["targets"]["seconds"] and mb < m["targets"]["mb"] and not m.get("problems"),
        }
    ]
