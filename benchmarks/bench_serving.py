"""13. The serving-side check: a checked load against OpenVINO's own cached load, 0.25-256 MB, and its memory.

The same MLPs as section 6 (eight square matmuls, 0.25 to 256 MB of weights) and its
transformer-shaped encoder, each warmed once by ``ovcache warm`` after its files have aged
past the stat cache's two-second racy window (as deployed model files have, so the check
takes their digests from the agent's stat cache instead of hashing the weights). Every load is a
fresh serving process (``benchmarks/serving_probe.py``); after ``import openvino``
and ``Core()``, which every kind pays alike, it times one *step*:

* ``plain``: ``core.compile_model(path, "CPU", {"CACHE_DIR": dir})``, OpenVINO's own cached load;
* ``checked``: ``import airflow_ovcache.serving`` plus ``load_checked`` with the same arguments
  (the helper's import is inside the step, as a server pays it);
* ``before``: the same with the package as it was before this change (extracted with
  ``git archive`` from the commit named in the results), which copied the blob into a private
  folder and hashed the copy;
* ``fresh``: ``core.compile_model(path, "CPU")`` with no cache at all.

All four read the one cache directory ``warm`` filled (none of them writes to it: checked
afterwards), kinds interleaved ABBA, then an extra ABBA block of ``plain`` and ``checked``
alone so that the ratio of the two is tight. The ratio's interval is a 95% bootstrap of
the ratio of medians (fixed seed).

OpenVINO's telemetry is off in the serving processes (a home folder of their own whose
``intel/openvino_telemetry`` consent file says ``0``). With no consent file, ``import openvino``
(2026.4.1, through ``openvino.tools.ovc``) sends an event from a background thread that forks a
process to do it; that thread runs during the step and, measured by hand here, adds about 20 ms
to a 0.3 MB plain load (18 -> 45 ms) and about as much to a checked one (37 -> 57-62 ms), on
this machine, which reaches no telemetry server. The benchmark measures the helper, so it leaves that out; a server should opt out too.

Memory: four serving processes load the same blob at once and stay alive; before
they start, ``sync`` and ``echo 3 > /proc/sys/vm/drop_caches`` (so the blob and the
libraries come from disk into a page cache without them), and when all four have
loaded, ``/proc/meminfo`` again. The deltas of ``Cached`` (page cache, shared memory
included), ``AnonPages`` and ``MemAvailable`` are the four servers' cost; each
process's own resident memory by kind is recorded too. Other work on the machine
moves the system-wide counters as well, so each kind runs several times, interleaved.
"""

from __future__ import annotations

import functools
import json
import os
import random
import statistics
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    BENCH_DIR,
    REPO_DIR,
    SEED,
    Context,
    describe_model,
    interleave,
    spawn,
    summary,
    table,
    wait_out_racy_window,
)

NAME = "serving"
TITLE = "Serving-side check: checked load vs OpenVINO's own cached load, 0.25-256 MB, and memory"

PROBE = BENCH_DIR / "serving_probe.py"
# The last commit before the copy-free check: what "before" measures.
BEFORE_REF = "bd5c53a"
TARGET_RATIO = 1.10
MEMORY_TOLERANCE = 0.10
SERVERS = 4

# (label, kind, size_mb, seed, layers or width, four-kind rounds, extra plain/checked rounds, quick rounds)
MODELS = [
    ("mlp-0.25mb", "mlp", 0.25, 11, 8, 12, 20, 2),
    ("mlp-16mb", "mlp", 16.0, 13, 8, 12, 16, 2),
    ("mlp-64mb", "mlp", 64.0, 14, 8, 10, 12, 0),
    ("mlp-256mb", "mlp", 256.0, 15, 8, 7, 8, 0),
    ("encoder-85mb", "transformer", 0.0, 16, 384, 8, 10, 0),
]
MEMORY_MODELS = ("mlp-64mb", "mlp-256mb")
MEMORY_ROUNDS = (3, 1)  # (full, quick) rounds of each kind
KINDS = ("plain", "checked", "before", "fresh", "floor")
FLOOR_PARTS = ("import_ms", "read_ms", "hash_ms", "rehash_ms", "floor_ms")
MEMORY_KINDS = ("plain", "checked", "before")


def _model(ctx: Context, label: str, kind: str, size_mb: float, seed: int, shape: int) -> Path:
    if kind == "mlp":
        return ctx.model("serving-repo", label, size_mb, seed, shape)
    from airflow_ovcache.samples import build_transformer

    path = ctx.workdir / "serving-repo" / label / "1" / "model.xml"
    if not path.exists():
        build_transformer(path, layers=12, width=shape, seed=seed)
    return path


def _before_package(ctx: Context) -> str | None:
    """The package as of ``BEFORE_REF``, extracted into the work directory; None if git cannot give it."""
    target = ctx.workdir / "before"
    archive = ctx.workdir / "before.tar"
    proc = subprocess.run(
        ["git", "archive", "--format=tar", "-o", str(archive), BEFORE_REF, "airflow_ovcache"],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        ctx.log(f"serving: no 'before' package ({proc.stderr.strip()}); skipping that kind")
        return None
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return str(target)


def _probe_env(ctx: Context) -> dict[str, str]:
    """The serving processes' environment: this one's, with a home whose OpenVINO telemetry consent is ``0``."""
    return _telemetry_off_env(ctx.workdir)


@functools.cache
def _telemetry_off_env(workdir: Path) -> dict[str, str]:
    """Made once per work directory: every probe of the run shares it."""
    home = workdir / "serving-home"
    (home / "intel").mkdir(parents=True, exist_ok=True)
    (home / "intel" / "openvino_telemetry").write_text("0")
    return {**os.environ, "HOME": str(home)}


def _run_probe(ctx: Context, kind: str, args: dict[str, Any]) -> tuple[dict[str, Any], float]:
    proc = spawn([ctx.python, str(PROBE), kind, json.dumps(args)], env=_probe_env(ctx))
    data = proc.json()
    if proc.code != 0 or not isinstance(data, dict):
        raise RuntimeError(f"serving probe {kind} failed (exit {proc.code}): {proc.err[-2000:]}")
    if data.get("other_threads"):
        raise RuntimeError(
            f"serving probe {kind}: threads ran during the step ({data['other_threads']}); is OpenVINO's telemetry off?"
        )
    return data, proc.wall


def _blobs(cache: Path) -> dict[str, list[int]]:
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino] for p in sorted(cache.glob("*.blob"))}


def ratio_ci(base: list[float], other: list[float], rounds: int = 2000) -> dict[str, float]:
    """median(other) / median(base) with a 95% bootstrap interval (fixed seed)."""
    rng = random.Random(SEED)
    ratios = []
    for _ in range(rounds):
        a = statistics.median(rng.choice(base) for _ in base)
        b = statistics.median(rng.choice(other) for _ in other)
        ratios.append(b / a)
    ratios.sort()
    return {
        "ratio": round(statistics.median(other) / statistics.median(base), 4),
        "lo": round(ratios[int(0.025 * rounds)], 4),
        "hi": round(ratios[int(0.975 * rounds) - 1], 4),
    }


def _lscpu() -> dict[str, str]:
    """The lines of ``lscpu`` that say what the numbers ran on (empty where it is missing)."""
    wanted = (
        "Model name",
        "CPU(s)",
        "Thread(s) per core",
        "Core(s) per socket",
        "L1d cache",
        "L2 cache",
        "L3 cache",
        "Hypervisor vendor",
    )
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in wanted:
            fields[key.strip()] = value.strip()
    return fields


def run(ctx: Context) -> dict[str, Any]:
    before = _before_package(ctx)
    kinds = [k for k in KINDS if k != "before" or before]
    out: dict[str, Any] = {
        "before_ref": BEFORE_REF,
        "lscpu": _lscpu(),
        "models": [],
        "memory": [],
        "target_ratio": TARGET_RATIO,
        "openvino_telemetry": "off in the serving processes (consent file 0)",
    }
    caches: dict[str, tuple[Path, Path]] = {}
    chosen = [row for row in MODELS if ctx.repeats(row[5], row[7])]
    models = {row[0]: _model(ctx, *row[:5]) for row in chosen}
    # The agent's stat cache does not remember files written in the last two seconds; warmed
    # earlier, every checked load would hash the weights again, which a deployed server does not.
    out["racy_wait_s"] = round(wait_out_racy_window([f for m in models.values() for f in m.parent.iterdir()]), 1)
    for label, kind, size_mb, seed, shape, rounds, extra, quick in chosen:
        rounds = ctx.repeats(rounds, quick)
        extra = ctx.repeats(extra, quick)
        model = models[label]
        cache = ctx.fresh(f"serving/{label}-cache")
        warm = spawn(
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
                str(cache),
            ]
        )
        item = warm.json()["result"]["items"][0]
        if warm.code != 0 or item["status"] != "warmed":
            raise RuntimeError(f"ovcache warm of {label}: exit {warm.code}, {item['status']}: {warm.err[-500:]}")
        caches[label] = (model, cache)
        ctx.log(f"serving: {label} ({item['size'] / 1e6:.1f} MB blob), {rounds} rounds of {len(kinds)} kinds + {extra} of 2")
        params = {"kind": kind, "size_mb": size_mb, "seed": seed, ("layers" if kind == "mlp" else "width"): shape}
        out["models"].append(_timings(ctx, label, model, cache, item, kinds, rounds, extra, before, params))
    if os.geteuid() != 0:
        out["memory_skipped"] = "needs root (drop_caches)"
        return out
    mem_kinds = [k for k in MEMORY_KINDS if k != "before" or before]
    for label in MEMORY_MODELS:
        if label not in caches:
            continue
        model, cache = caches[label]
        rounds = ctx.repeats(*MEMORY_ROUNDS)
        ctx.log(f"serving: memory of {SERVERS} servers at once, {label}, {rounds} rounds of {len(mem_kinds)} kinds")
        trials = [_servers(ctx, kind, model, cache, before) for kind in interleave(mem_kinds, rounds)]
        out["memory"].append({"label": label, "blob_bytes": next(iter(_blobs(cache).values()))[0], "trials": trials})
    return out


def _timings(
    ctx: Context,
    label: str,
    model: Path,
    cache: Path,
    item: dict[str, Any],
    kinds: list[str],
    rounds: int,
    extra: int,
    before: str | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    identity = _blobs(cache)
    args = {"model": str(model), "cache_dir": str(cache), "before_path": before, "blob": str(cache / next(iter(identity)))}
    os.sync()
    for kind in kinds:  # one untimed start of each: first-touch costs are not what is compared
        _run_probe(ctx, kind, args)
    steps: dict[str, list[float]] = {k: [] for k in kinds}
    walls: dict[str, list[float]] = {k: [] for k in kinds}
    checks: dict[str, list[float]] = {k: [] for k in ("checked", "before") if k in kinds}
    loaded: dict[str, list[bool]] = {k: [] for k in kinds}
    floor: dict[str, list[float]] = {k: [] for k in FLOOR_PARTS}
    problems: list[str] = []
    for kind in interleave(kinds, rounds) + interleave(["plain", "checked"], extra):
        data, wall = _run_probe(ctx, kind, args)
        steps[kind].append(data["step_s"] * 1000)
        walls[kind].append(wall * 1000)
        loaded[kind].append(bool(data["loaded_from_cache"]))
        if kind in checks:
            checks[kind].append(float(data["check_ms"]))
        if kind == "floor":
            for part in FLOOR_PARTS:
                floor[part].append(float(data[part]))
        if kind == "checked" and data.get("isolation") != "memory":
            problems.append(f"checked load used isolation {data.get('isolation')}")
        if kind == "before" and before and not str(data.get("package", "")).startswith(before):
            problems.append(f"'before' ran {data.get('package')}, not the package of {BEFORE_REF}")
    if _blobs(cache) != identity:
        problems.append("a load changed the shared cache directory")
    for kind in ("plain", "checked", "before"):
        if kind in loaded and not all(loaded[kind]):
            problems.append(f"{kind}: {loaded[kind].count(False)} of {len(loaded[kind])} loads were not from the cache")
    return {
        "label": label,
        "params": params,
        "model": describe_model(model),
        "blob_bytes": item["size"],
        "rounds": rounds,
        "extra_rounds": extra,
        "step_ms": {k: summary(v) for k, v in steps.items()},
        "process_ms": {k: summary(v) for k, v in walls.items()},
        "check_ms": {k: summary(v) for k, v in checks.items()},
        "floor_ms": {k: summary(v) for k, v in floor.items() if v},
        "loaded_from_cache": {k: f"{sum(v)}/{len(v)}" for k, v in loaded.items()},
        "checked_vs_plain": ratio_ci(steps["plain"], steps["checked"]),
        "checked_vs_plain_process": ratio_ci(walls["plain"], walls["checked"]),
        "before_vs_plain": ratio_ci(steps["plain"], steps["before"]) if "before" in steps else None,
        "problems": problems,
    }


def _meminfo() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("MemAvailable", "Cached", "AnonPages", "Shmem", "Buffers"):
                out[key] = int(value.split()[0])
    return out


def _resident_bytes(path: str) -> int:
    """How much of a file is in the page cache: ``mincore`` over a mapping of it that is never touched."""
    import ctypes
    import mmap

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        # Private and writable only so that ctypes can take its address; nothing writes to it.
        mapping = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            vec = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
            anchor = ctypes.c_char.from_buffer(mapping)
            failed = libc.mincore(ctypes.addressof(anchor), size, vec) != 0
            del anchor
            return 0 if failed else sum(b & 1 for b in vec.raw) * mmap.PAGESIZE
        finally:
            mapping.close()
    finally:
        os.close(fd)


def _files_in_use(pids: list[int], also: list[Path]) -> dict[tuple[int, int], str]:
    """Every file the processes map (libraries, blobs, private copies even once unlinked) and ``also``."""
    files: dict[tuple[int, int], str] = {}
    for extra in also:
        st = os.stat(extra)
        files[(st.st_dev, st.st_ino)] = str(extra)
    for pid in pids:
        with open(f"/proc/{pid}/maps") as handle:
            for line in handle:
                parts = line.split(maxsplit=5)
                if len(parts) < 6 or not parts[5].startswith("/"):
                    continue
                name = parts[5].strip()
                # An unlinked file (the old helper's private copy) is still reachable through map_files.
                path = f"/proc/{pid}/map_files/{parts[0]}" if name.endswith("(deleted)") else name
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                files.setdefault((st.st_dev, st.st_ino), path)
    return files


def _servers(ctx: Context, kind: str, model: Path, cache: Path, before: str | None) -> dict[str, Any]:
    """Start SERVERS serving processes at once after dropping the page cache; memory once all have loaded."""
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    time.sleep(1.0)
    start = _meminfo()
    args = json.dumps({"model": str(model), "cache_dir": str(cache), "before_path": before, "hold": True})
    procs = [
        subprocess.Popen(
            [ctx.python, str(PROBE), kind, args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_DIR,
            env=_probe_env(ctx),
        )
        for _ in range(SERVERS)
    ]
    try:
        lines = [json.loads(p.stdout.readline()) for p in procs if p.stdout is not None]
        loaded = _meminfo()
        in_use = _files_in_use([p.pid for p in procs], [cache / blob for blob in _blobs(cache)] + list(model.parent.iterdir()))
        resident = {path: _resident_bytes(path) for path in in_use.values()}
    finally:
        for p in procs:
            if p.stdin is not None:
                p.stdin.close()
        for p in procs:
            p.wait(timeout=120)
    delta = {k: round((loaded[k] - start[k]) / 1024, 1) for k in ("Cached", "AnonPages", "Shmem")}
    delta["used"] = round((start["MemAvailable"] - loaded["MemAvailable"]) / 1024, 1)
    blob_paths = {str(cache / blob) for blob in _blobs(cache)}
    return {
        "kind": kind,
        # Page cache held by the files these servers use, whatever else the machine does meanwhile.
        "files_resident_mib": round(sum(resident.values()) / (1 << 20), 1),
        "blob_copies_resident_mib": round(
            sum(v for k, v in resident.items() if k in blob_paths or "/map_files/" in k and v > (1 << 20)) / (1 << 20), 1
        ),
        "files": len(resident),
        "delta_mib": delta,
        "per_process_mib": {
            key: round(statistics.median(line["memory_kib"].get(key, 0) for line in lines) / 1024, 1)
            for key in ("VmRSS", "RssAnon", "RssFile", "RssShmem")
        },
        "loaded_from_cache": sum(bool(line["loaded_from_cache"]) for line in lines),
    }


# -- rendering ------------------------------------------------------------------------------


def _mb(mo: dict[str, Any]) -> float:
    return float(mo["blob_bytes"]) / 1e6


def _cell(stat: dict[str, Any] | None) -> str:
    if not stat or not stat.get("n"):
        return "-"
    return f"{stat['median']:,.1f} ({stat['p25']:,.1f}-{stat['p75']:,.1f})"


def _ratio(r: dict[str, float] | None) -> str:
    return "-" if not r else f"{r['ratio']:.2f}x ({r['lo']:.2f}-{r['hi']:.2f})"


def _memory_summary(entry: dict[str, Any]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for kind in MEMORY_KINDS:
        trials = [t for t in entry["trials"] if t["kind"] == kind]
        if not trials:
            continue
        row = {
            key: float(statistics.median(t[key] for t in trials)) for key in ("files_resident_mib", "blob_copies_resident_mib")
        }
        row.update(
            {key: float(statistics.median(t["delta_mib"][key] for t in trials)) for key in ("Cached", "AnonPages", "used")}
        )
        row.update({key: float(statistics.median(t["per_process_mib"][key] for t in trials)) for key in ("RssAnon", "RssFile")})
        row["n"] = len(trials)
        row["files_min"] = min(t["files_resident_mib"] for t in trials)
        row["files_max"] = max(t["files_resident_mib"] for t in trials)
        out[kind] = row
    return out


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's tables by marker name: the serving start per model, and the memory of several servers."""
    m = result["measurements"]
    rows = []
    for mo in m["models"]:
        n = mo["rounds"] + mo["extra_rounds"]
        rows.append(
            [
                f"{mo['label']} ({_mb(mo):,.1f} MB blob), n = {n}/{n}/{mo['rounds']}/{mo['rounds']}",
                _cell(mo["step_ms"]["plain"]),
                _cell(mo["step_ms"]["checked"]),
                _cell(mo["check_ms"].get("checked")),
                _ratio(mo["checked_vs_plain"]),
                _cell(mo["step_ms"].get("before")),
                _ratio(mo.get("before_vs_plain")),
                _cell(mo["step_ms"].get("fresh")),
                _ratio(mo["checked_vs_plain_process"]),
            ]
        )
    out = {
        "serving": table(
            [
                "model",
                "plain cached load",
                "checked load",
                "of which the check",
                "checked / plain",
                "before",
                "before / plain",
                "fresh compile",
                "checked / plain, whole process",
            ],
            rows,
        )
    }
    floor_rows = []
    for mo in m["models"]:
        f = mo.get("floor_ms")
        if not f:
            continue
        budget = (TARGET_RATIO - 1) * mo["step_ms"]["plain"]["median"]
        floor_rows.append(
            [
                f"{mo['label']} ({_mb(mo):,.1f} MB blob), n = {f['floor_ms']['n']}",
                _cell(mo["step_ms"]["plain"]),
                f"{budget:,.1f}",
                _cell(f["floor_ms"]),
                _cell(f["import_ms"]),
                _cell(f["read_ms"]),
                _cell(f["hash_ms"]),
                _cell(f["rehash_ms"]),
                f"{f['rehash_ms']['median'] / budget:.2f}x",
            ]
        )
    if floor_rows:
        out["serving.floor"] = table(
            [
                "model",
                "plain cached load",
                f"budget at {TARGET_RATIO:.2f}x",
                "floor: import + read + hash",
                "import blake3",
                "read into private memory",
                "hash",
                "hash again, bytes resident",
                "hash alone / budget",
            ],
            floor_rows,
        )
    if m["memory"]:
        mrows = []
        for entry in m["memory"]:
            for kind, row in _memory_summary(entry).items():
                mrows.append(
                    [
                        f"{entry['label']} ({entry['blob_bytes'] / (1 << 20):,.0f} MiB blob)",
                        kind,
                        int(row["n"]),
                        f"{row['files_resident_mib']:,.0f} [{row['files_min']:,.0f}-{row['files_max']:,.0f}]",
                        f"{row['blob_copies_resident_mib']:,.0f}",
                        f"{row['Cached']:,.0f}",
                        f"{row['AnonPages']:,.0f}",
                        f"{row['used']:,.0f}",
                        f"{row['RssAnon']:,.0f} / {row['RssFile']:,.0f}",
                    ]
                )
        out["serving.memory"] = table(
            [
                "model",
                "kind",
                "trials",
                "page cache of their files",
                "of which the blob and its copies",
                "`Cached` delta",
                "`AnonPages` delta",
                "used",
                "per process: anon / file",
            ],
            mrows,
        )
    return out


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    out = []
    for mo in m["models"]:
        r = mo["checked_vs_plain"]
        out.append(
            {
                "what": f"checked load, helper import included, vs OpenVINO's own cached load ({mo['label']}, {_mb(mo):,.1f} MB)",
                "target": f"<= {TARGET_RATIO:.2f}x (median)",
                "result": f"{r['ratio']:.2f}x (95% CI {r['lo']:.2f}-{r['hi']:.2f}); "
                f"{mo['step_ms']['checked']['median']:,.1f} vs {mo['step_ms']['plain']['median']:,.1f} ms; "
                f"whole process {mo['checked_vs_plain_process']['ratio']:.2f}x",
                "met": r["ratio"] <= TARGET_RATIO and not mo["problems"],
            }
        )
    if m["models"] and all("fresh" in mo["step_ms"] for mo in m["models"]):
        worst = max(m["models"], key=lambda mo: mo["step_ms"]["checked"]["median"] / mo["step_ms"]["fresh"]["median"])
        share = worst["step_ms"]["checked"]["median"] / worst["step_ms"]["fresh"]["median"]
        out.append(
            {
                "what": "checked load vs a fresh compile without any cache (every size)",
                "target": "never slower",
                "result": f"at most {share:.2f}x of the fresh compile ({worst['label']})",
                "met": all(mo["step_ms"]["checked"]["median"] < mo["step_ms"]["fresh"]["median"] for mo in m["models"]),
            }
        )
    for entry in m["memory"]:
        rows = _memory_summary(entry)
        if "plain" in rows and "checked" in rows:
            plain, checked = rows["plain"], rows["checked"]
            ratio = checked["files_resident_mib"] / plain["files_resident_mib"]
            out.append(
                {
                    "what": f"page cache of {SERVERS} checked loads of one blob vs {SERVERS} plain ones ({entry['label']})",
                    "target": f"within {MEMORY_TOLERANCE:.0%}",
                    "result": f"{checked['files_resident_mib']:,.0f} vs {plain['files_resident_mib']:,.0f} MiB ({ratio - 1:+.0%}); "
                    f"per process {checked['RssAnon'] + checked['RssFile']:,.0f} vs {plain['RssAnon'] + plain['RssFile']:,.0f} MiB resident",
                    "met": ratio <= 1 + MEMORY_TOLERANCE,
                }
            )
    return out
