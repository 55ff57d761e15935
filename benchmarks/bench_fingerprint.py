"""5. Fingerprint throughput versus reading the same bytes.

A few hundred MB of IR models (``samples.build_ir``, fixed seeds), all in the
page cache (read once beforehand, and re-read by every round). Kinds, interleaved:

* ``read``: the same files read with ``readinto`` into one reusable 1 MiB buffer;
* ``fingerprint, cold stat cache``: ``Fingerprinter`` with an empty stat cache
  (every byte hashed);
* ``fingerprint, warm stat cache``: the stat cache a previous run saved, loaded
  from disk as a new process would (nothing re-read);
* ``blake3, 1 thread``: for context, BLAKE3 over the same files with one thread.

Throughput is bytes of model files / wall time, in MB/s (10^6 bytes).
"""

from __future__ import annotations

import time
from typing import Any

from benchlib import Context, cpu_seconds, interleave, others_share, read_files, summary, table, wait_out_racy_window

NAME = "fingerprint"
TITLE = "Fingerprint throughput vs plain read"

# (models, size_mb each, layers); seeds are 500, 501, ...
FULL = (5, 64.0, 4)
QUICK = (2, 32.0, 4)
TARGET_RATIO = 0.8


def run(ctx: Context) -> dict[str, Any]:
    from airflow_ovcache.core.fingerprint import Fingerprinter, StatCache

    count, size_mb, layers = QUICK if ctx.quick else FULL
    dirs = [ctx.model("fp-repo", f"m{k}", size_mb, 500 + k, layers).parent for k in range(count)]
    files = sorted(p for d in dirs for p in d.iterdir() if p.is_file())
    total = sum(p.stat().st_size for p in files)
    wait_out_racy_window(files)
    read_files(files)  # page cache: every kind below starts from the same state
    stat_cache_path = ctx.fresh("fp-state/fingerprints.json")

    def fingerprint(cache: StatCache) -> tuple[list[str], Fingerprinter]:
        fp = Fingerprinter(cache)
        return [fp.fingerprint(d).digest for d in dirs], fp

    reference, fp = fingerprint(StatCache(stat_cache_path))
    fp.cache.save()

    def kind_read() -> dict[str, Any]:
        return {"bytes": read_files(files)}

    def kind_cold() -> dict[str, Any]:
        digests, fp = fingerprint(StatCache(stat_cache_path))
        return {"ok": digests == reference, "hashed": fp.stats.bytes_hashed}

    def kind_warm() -> dict[str, Any]:
        digests, fp = fingerprint(StatCache.load(stat_cache_path))
        return {"ok": digests == reference, "hashed": fp.stats.bytes_hashed}

    def kind_blake3() -> dict[str, Any]:
        import blake3

        for path in files:
            hasher = blake3.blake3(max_threads=1)
            hasher.update_mmap(str(path))
            hasher.hexdigest()
        return {}

    kinds = {
        "read": kind_read,
        "fingerprint, cold stat cache": kind_cold,
        "fingerprint, warm stat cache": kind_warm,
        "blake3, 1 thread": kind_blake3,
    }
    rounds = ctx.repeats(9, 3)
    ctx.log(f"fingerprint: {count} models, {total / 1e6:.0f} MB, {rounds} rounds of {len(kinds)} kinds")
    seconds: dict[str, list[float]] = {k: [] for k in kinds}
    problems: list[str] = []
    cpu_before = cpu_seconds()
    for kind in interleave(list(kinds), rounds):
        start = time.perf_counter()
        info = kinds[kind]()
        seconds[kind].append(time.perf_counter() - start)
        if info.get("ok") is False:
            problems.append(f"{kind}: fingerprint differs from the reference")
        if kind == "fingerprint, cold stat cache" and info["hashed"] != total:
            problems.append(f"cold run hashed {info['hashed']} of {total} bytes")
        if kind == "fingerprint, warm stat cache" and info["hashed"]:
            problems.append(f"warm run re-hashed {info['hashed']} bytes")
        if kind == "read" and info["bytes"] != total:
            problems.append(f"read {info['bytes']} of {total} bytes")
    others = others_share(cpu_before, cpu_seconds())
    mbps = {k: summary([total / 1e6 / s for s in v], 1, 1) for k, v in seconds.items()}
    ratios = {k: round(mbps[k]["median"] / mbps["read"]["median"], 3) for k in kinds}
    return {
        "models": count,
        "size_mb_each": size_mb,
        "layers": layers,
        "files": len(files),
        "bytes": total,
        "rounds": rounds,
        "seconds": {k: summary(v, 1, 4) for k, v in seconds.items()},
        "mb_per_s": mbps,
        "ratio_to_read": ratios,
        "others_cpu_share": others,  # during the timed rounds only
        "target_ratio": TARGET_RATIO,
        "problems": problems,
    }


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: throughput of each kind of pass."""
    m = result["measurements"]
    rows = []
    for kind, stat in m["mb_per_s"].items():
        secs = m["seconds"][kind]
        rows.append(
            [
                kind,
                f"{stat['median']:,.0f} ({stat['p25']:,.0f}-{stat['p75']:,.0f})",
                f"{secs['median'] * 1000:.1f}",
                f"{m['ratio_to_read'][kind]:.2f}",
            ]
        )
    return {"fingerprint": table(["kind", "MB/s", "ms per pass", "ratio to read"], rows)}


def _ratio(value: float) -> str:
    return f"{value * 100:.0f}%" if value < 10 else f"{value:.0f}x"


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    cold, warm = "fingerprint, cold stat cache", "fingerprint, warm stat cache"
    rehashed = [p for p in m["problems"] if p.startswith(warm)]
    return [
        {
            "what": f"{cold} (first run) vs plain read ({m['bytes'] / 1e6:.0f} MB in page cache)",
            "target": f">= {m['target_ratio'] * 100:.0f}% of read throughput",
            "result": f"{_ratio(m['ratio_to_read'][cold])} ({m['mb_per_s'][cold]['median']:,.0f} vs {m['mb_per_s']['read']['median']:,.0f} MB/s)",
            "met": m["ratio_to_read"][cold] >= m["target_ratio"] and not m["problems"],
        },
        {
            "what": f"{warm} (repeat run, stat cache loaded from disk)",
            "target": "stat only: no file content read",
            "result": f"{'0 bytes re-hashed' if not rehashed else '; '.join(rehashed)}; "
            f"{m['seconds'][warm]['median'] * 1000:.1f} ms per pass ({_ratio(m['ratio_to_read'][warm])} of the read rate)",
            "met": not rehashed,
        },
    ]
