"""One measurement in a fresh interpreter: ``python probe.py <op> '<json args>'`` prints one JSON line.

Fresh processes are the point: a serving process, a deploy hook and a nightly
job each start cold, so each pays its own imports and its own OpenVINO start-up.
Nothing here is imported before it is timed, and ``openvino`` is imported only
by the ops that compile, so the no-op ops can report whether anything pulled it in.
The steps inside a warm, a verify or a command are the core's own trace spans
(``airflow_ovcache.core.trace``), switched on in this process only.

Ops:

``compile``  what a serving application does: ``core.compile_model(path, "CPU", {"CACHE_DIR": dir})``.
``warm``     ``Warmer.warm`` of one model version, cold, with each step of the warm timed.
``noop``     ``Warmer.warm`` of an already-warm entry, once cold and then many times.
``verify``   ``Verifier.verify()`` without load checks, first in this process and then again.
``cli_phases`` one ``ovcache`` command in this process, with time and memory (VmRSS, VmHWM) at its big steps.
"""

from __future__ import annotations

import json
import sys
import time

T_START = time.perf_counter()


def op_compile(args: dict) -> dict:
    import os

    t0 = time.perf_counter()
    import openvino as ov

    t1 = time.perf_counter()
    core = ov.Core()
    t2 = time.perf_counter()
    compiled = core.compile_model(
        args["model"], args.get("device", "CPU"), {"CACHE_DIR": args["cache_dir"], **args.get("properties", {})}
    )
    t3 = time.perf_counter()
    return {
        "import_s": t1 - t0,
        "core_s": t2 - t1,
        "compile_s": t3 - t2,
        "loaded_from_cache": bool(compiled.get_property("LOADED_FROM_CACHE")),
        "blobs": sorted(n for n in os.listdir(args["cache_dir"]) if n.endswith(".blob")),
    }


def tally(steps: list[tuple[str, str, str | None]]) -> dict[str, list[float]]:
    """``{label: [seconds, calls]}`` from the spans the core recorded, in the order of ``steps``.

    Each step is ``(label, span name, parent span name or None)``: with a parent, only
    the spans directly inside one of that name count. A span inside another of its own
    name (a composite device describing its parts) is counted once, in the outer one.
    Steps that never ran are left out.
    """
    from airflow_ovcache.core import trace

    spans = trace.spans()

    def nested_in_itself(index: int) -> bool:
        parent = spans[index].parent
        while parent is not None:
            if spans[parent].name == spans[index].name:
                return True
            parent = spans[parent].parent
        return False

    out: dict[str, list[float]] = {}
    for label, name, within in steps:
        seconds, calls = 0.0, 0
        for i, span in enumerate(spans):
            if span.name != name or nested_in_itself(i):
                continue
            if within is not None and (span.parent is None or spans[span.parent].name != within):
                continue
            seconds += span.duration or 0.0
            calls += 1
        if calls:
            out[label] = [seconds, calls]
    return out


def span_names(steps: list[tuple[str, str, str | None]]) -> set[str]:
    """The span names a list of steps reads (the only ones worth recording)."""
    return {name for _, name, _ in steps} | {within for _, _, within in steps if within}


# The steps of a cold warm in the order they run: (label in the report, span the core records, parent).
WARM_STEPS: list[tuple[str, str, str | None]] = [
    ("fingerprint model files", "fingerprint", None),
    ("entry lock: take", "cache.entry_lock.take", None),
    ("read manifest (current entry)", "warm.current_entry", None),
    ("device total (incl. openvino import, Core)", "warm.device", None),
    ("device query (describe CPU)", "devices.describe", None),
    ("staging folder: create", "cache.staging.create", None),
    ("compile_model (OpenVINO)", "compile", None),
    ("read blob header", "blob.read_header", None),
    ("blob checksum (BLAKE3)", "blob.checksum", None),
    ("fsync blob", "fsync_file", None),
    ("runtime version (metadata)", "hostfacts.runtime_dist_version", None),
    ("host CPU signature", "hostfacts.cpu_signature", None),
    ("manifest: lock + load", "cache.update_manifest.load", None),
    ("publish: rename blob", "warm.publish.rename", None),
    ("publish: fsync cache dir", "warm.publish.fsync_dir", None),
    ("manifest: save (write, fsync, rename)", "cache.update_manifest.save", None),
    ("staging folder: remove", "cache.staging.remove", None),
    ("record host facts", "warm.remember_isa", None),
    ("entry lock: release", "cache.entry_lock.release", None),
]


def op_warm(args: dict) -> dict:
    from pathlib import Path

    t0 = time.perf_counter()
    from airflow_ovcache.core import trace
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.repository import ModelRepository
    from airflow_ovcache.core.spec import CacheSpec
    from airflow_ovcache.core.warm import Warmer

    import_s = time.perf_counter() - t0
    trace.enable(only=span_names(WARM_STEPS))
    repo = ModelRepository(args["repository"])
    version = repo.version(args["model"], args.get("version", 1))
    spec = CacheSpec.make()
    t1 = time.perf_counter()
    cache = CacheDir(Path(args["cache_dir"])).check(create=True, writable=True)
    warmer = Warmer(cache, repository_root=repo.root)
    t2 = time.perf_counter()
    trace.clear()  # the steps of the warm only, not of the set-up
    result = warmer.warm(version, spec)
    t3 = time.perf_counter()
    warmer.close()
    t4 = time.perf_counter()
    steps = {label: value for label, (value, _calls) in tally(WARM_STEPS).items()}
    # The device step includes describe; report the import + Core part on its own, just before it.
    device_total = steps.pop("device total (incl. openvino import, Core)", None)
    seconds: dict[str, float] = {}
    for label, value in steps.items():
        if label == "device query (describe CPU)" and device_total is not None:
            seconds["openvino import + Core()"] = device_total - value
        seconds[label] = value
    return {
        "status": result.status,
        "reason": result.reason,
        "blob": result.blob,
        "compile_seconds": result.compile_seconds,
        "import_s": import_s,
        "setup_s": t2 - t1,
        "warm_s": t3 - t2,
        "close_s": t4 - t3,
        "phases": seconds,
        "openvino_imported": "openvino" in sys.modules,
    }


def op_noop(args: dict) -> dict:
    from pathlib import Path

    t0 = time.perf_counter()
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.repository import ModelRepository
    from airflow_ovcache.core.spec import CacheSpec
    from airflow_ovcache.core.warm import Warmer

    import_s = time.perf_counter() - t0
    repo = ModelRepository(args["repository"])
    version = repo.version(args["model"], args.get("version", 1))
    spec = CacheSpec.make()
    t1 = time.perf_counter()
    cache = CacheDir(Path(args["cache_dir"])).check(create=False, writable=True)
    warmer = Warmer(cache, repository_root=repo.root)
    setup_s = time.perf_counter() - t1
    statuses = []
    times = []
    for _ in range(int(args.get("repeats", 100)) + 1):
        start = time.perf_counter()
        result = warmer.warm(version, spec)
        times.append(time.perf_counter() - start)
        statuses.append(result.status)
    warmer.close()
    stats = warmer.fingerprinter.stats
    return {
        "import_s": import_s,
        "setup_s": setup_s,
        "first_s": times[0],
        "repeat_s": times[1:],
        "statuses": sorted(set(statuses)),
        "files_hashed": stats.files_hashed,
        "files_from_cache": stats.files_from_cache,
        "openvino_imported": "openvino" in sys.modules,
        "modules": len(sys.modules),
    }


def _profile_rows(profiler: object, limit: int) -> list[dict]:
    import pstats

    stats = pstats.Stats(profiler)  # type: ignore[arg-type]
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        short = filename
        for marker in ("/airflow_ovcache/", "/site-packages/", "/lib/python"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                if marker == "/airflow_ovcache/":
                    short = "airflow_ovcache/" + short
                break
        rows.append({"function": f"{short}:{line}({func})", "calls": ncalls, "tottime": tottime, "cumtime": cumtime})
    rows.sort(key=lambda r: r["tottime"], reverse=True)
    by_self = rows[:limit]
    rows.sort(key=lambda r: r["cumtime"], reverse=True)
    return by_self + [dict(r, by="cumtime") for r in rows[:limit]]


# The steps of a verify; labels starting with two spaces run inside the per-entry checks.
VERIFY_STEPS: list[tuple[str, str, str | None]] = [
    ("load stat cache", "statcache.load", None),
    ("read + parse manifest, with digest check", "cache.read_manifest", None),
    ("per-entry checks", "verify.check", None),
    ("  lstat blob (regular_file_inside)", "regular_file_inside", "verify.check"),
    ("  stat blob (stat_identity)", "stat_identity", "verify.check"),
    ("  read blob header", "blob.read_header", "verify.check"),
    ("  runtime build string (first call imports OpenVINO)", "hostfacts.runtime_build", None),
    ("  host ISA (host facts file)", "verify.isa", None),
    ("  fingerprint model folder (stat cache)", "fingerprint", None),
    ("  stat model file", "model_file_stat", "verify.check"),
    ("  device check (ov.Core, describe)", "verify.device", None),
    ("orphan scan (list blobs)", "cache.blob_names", None),
    ("save stat cache", "statcache.save", None),
    ("record verified times", "verify.record", None),
    ("  save manifest (asdict, digest, JSON, fsync, rename)", "manifest.save", None),
]


def op_verify(args: dict) -> dict:
    from pathlib import Path

    t0 = time.perf_counter()
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.verify import Verifier, summarize

    import_s = time.perf_counter() - t0
    root = Path(args["cache_dir"])
    check_devices = bool(args.get("check_devices", True))
    instrument = bool(args.get("instrument"))
    if instrument:
        from airflow_ovcache.core import trace

        trace.enable(only=span_names(VERIFY_STEPS))
    breakdowns = []

    def once() -> tuple[float, dict, bool]:
        if instrument:
            trace.clear()
        start = time.perf_counter()
        cache = CacheDir(root).check(create=False, writable=False)
        verifier = Verifier(cache, checksum="changed", load_check=False, check_devices=check_devices)
        results = verifier.verify()
        seconds = time.perf_counter() - start
        if instrument:
            breakdowns.append({"total": seconds, "steps": tally(VERIFY_STEPS)})
        return seconds, summarize(results), "openvino" in sys.modules

    first_s, counts, ov_after_first = once()
    repeat_s = []
    for _ in range(int(args.get("repeats", 5))):
        seconds, counts, _ = once()
        repeat_s.append(seconds)
    profile = None
    if args.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        once()
        profiler.disable()
        profile = _profile_rows(profiler, int(args.get("profile_rows", 15)))
    return {
        "import_s": import_s,
        "first_s": first_s,
        "repeat_s": repeat_s,
        "summary": counts,
        "openvino_imported": ov_after_first,
        "profile": profile,
        "phases": breakdowns,
    }


# The big steps of one agent command: (label in the marks, span the core records).
CLI_STEPS = [
    ("load + parse manifest (with digest)", "cache.load_manifest"),
    ("manifest digest (canonical JSON + BLAKE3)", "manifest.digest"),
    ("save manifest", "manifest.save"),
    ("Verifier.verify", "verify"),
    ("record verified times (re-read under lock, save)", "verify.record"),
    ("JSON envelope (dumps)", "cli.envelope.dumps"),
]


def op_cli_phases(args: dict) -> dict:
    """Run one ``ovcache`` command in this process; time and memory at the boundaries of its big steps.

    Marks are ``[seconds since start, name, VmRSS KiB, VmHWM KiB]``; ``> step`` opens a step, ``< step`` closes it.
    """
    import contextlib
    import io

    from airflow_ovcache.core import trace

    def now(name: str) -> list:
        rss, hwm = trace.memory_kb()
        return [round(time.perf_counter() - T_START, 4), name, rss, hwm]

    marks = [now("interpreter started")]
    from airflow_ovcache.cli import main as cli

    marks.append(now("agent CLI imported"))
    labels = {name: label for label, name in CLI_STEPS}
    trace.enable(only=labels, memory=True)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(args["argv"]))
    done = now("command returned")
    steps = []
    for span in trace.spans():
        for at, arrow, memory in ((span.start, ">", span.memory_kb), (span.end, "<", span.memory_end_kb)):
            rss, hwm = memory or (0, 0)
            steps.append((at, [round(at - T_START, 4), f"{arrow} {labels[span.name]}", rss, hwm]))
    marks += [mark for _at, mark in sorted(steps, key=lambda step: step[0])]
    marks.append(done)
    return {"exit_code": code, "output_bytes": len(out.getvalue()), "marks": marks}


def _vmhwm_kb() -> int | None:
    """This process's peak resident set so far (``VmHWM``), in KiB."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


OPS = {"compile": op_compile, "warm": op_warm, "noop": op_noop, "verify": op_verify, "cli_phases": op_cli_phases}


def main() -> int:
    op, raw = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "{}"
    try:
        out = OPS[op](json.loads(raw))
    except Exception as exc:  # noqa: BLE001 - the parent reports it with the probe's name
        import traceback

        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    out["process_s"] = time.perf_counter() - T_START
    out["vmhwm_kb"] = _vmhwm_kb()
    sys.stdout.write(json.dumps(out) + "\n")
    return 0 if "error" not in out else 1


if __name__ == "__main__":
    raise SystemExit(main())
