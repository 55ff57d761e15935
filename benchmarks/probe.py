"""One measurement in a fresh interpreter: ``python probe.py <op> '<json args>'`` prints one JSON line.

Fresh processes are the point: a serving process, a deploy hook and a nightly
job each start cold, so each pays its own imports and its own OpenVINO start-up.
Nothing here is imported before it is timed, and ``openvino`` is imported only
by the ops that compile, so the no-op ops can report whether anything pulled it in.

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


class Phases:
    """Wall time per named step; wrappers are installed on the core's module attributes for this process only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.order: list[str] = []  # the order the steps were wrapped in, which is the order they run

    def ordered(self) -> dict[str, list[float]]:
        return {name: [self.seconds[name], self.calls[name]] for name in self.order if name in self.seconds}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def wrap(self, owner: object, attr: str, name: str) -> None:
        inner = getattr(owner, attr)
        self.order.append(name)

        def timed(*a, **k):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                self.add(name, time.perf_counter() - start)

        setattr(owner, attr, timed)

    def wrap_cm(self, owner: object, attr: str, enter_name: str, exit_name: str) -> None:
        """Time a context manager's set-up and tear-down separately (the body is someone else's step)."""
        import contextlib

        inner = getattr(owner, attr)
        phases = self
        self.order += [enter_name, exit_name]

        @contextlib.contextmanager
        def timed(*a, **k):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            manager = inner(*a, **k)
            value = manager.__enter__()
            phases.add(enter_name, time.perf_counter() - start)
            try:
                yield value
            except BaseException:
                start = time.perf_counter()
                if not manager.__exit__(*sys.exc_info()):
                    raise
                phases.add(exit_name, time.perf_counter() - start)
            else:
                start = time.perf_counter()
                manager.__exit__(None, None, None)
                phases.add(exit_name, time.perf_counter() - start)

        setattr(owner, attr, timed)


# The steps of a cold warm in the order they run (for the report).
WARM_STEPS = [
    "fingerprint model files",
    "entry lock: take",
    "read manifest (current entry)",
    "openvino import + Core()",
    "device query (describe CPU)",
    "staging folder: create",
    "compile_model (OpenVINO)",
    "read blob header",
    "blob checksum (BLAKE3)",
    "fsync blob",
    "runtime version (metadata)",
    "host CPU signature",
    "manifest: lock + load",
    "publish: rename blob",
    "publish: fsync cache dir",
    "manifest: save (write, fsync, rename)",
    "staging folder: remove",
    "record host facts",
    "entry lock: release",
]


class _OsProxy:
    """Stands in for ``os`` inside one module, so that module's calls can be timed without touching ``os`` itself."""

    def __getattr__(self, name: str) -> object:
        import os

        return getattr(os, name)


def op_warm(args: dict) -> dict:
    from pathlib import Path

    t0 = time.perf_counter()
    from airflow_ovcache.core import compiler, hostfacts
    from airflow_ovcache.core import warm as warm_mod
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.fingerprint import Fingerprinter
    from airflow_ovcache.core.repository import ModelRepository
    from airflow_ovcache.core.spec import CacheSpec

    import_s = time.perf_counter() - t0
    phases = Phases()
    # Each wrapper times only its own step (see WARM_STEPS for the order they run in).
    phases.wrap(Fingerprinter, "fingerprint", "fingerprint model files")
    phases.wrap_cm(CacheDir, "entry_lock", "entry lock: take", "entry lock: release")
    phases.wrap(warm_mod.Warmer, "_current_entry", "read manifest (current entry)")
    phases.wrap(warm_mod.Warmer, "_device", "device total (incl. openvino import, Core)")
    phases.wrap(warm_mod, "describe", "device query (describe CPU)")
    phases.wrap_cm(CacheDir, "staging", "staging folder: create", "staging folder: remove")
    phases.wrap(compiler, "serving_compile", "compile_model (OpenVINO)")
    phases.wrap(warm_mod, "read_header", "read blob header")
    phases.wrap(warm_mod, "blob_checksum", "blob checksum (BLAKE3)")
    phases.wrap(warm_mod, "fsync_file", "fsync blob")
    phases.wrap_cm(CacheDir, "update_manifest", "manifest: lock + load", "manifest: save (write, fsync, rename)")
    warm_mod.os = _OsProxy()  # type: ignore[assignment]  # only warm.py's own os.replace is timed
    phases.wrap(warm_mod.os, "replace", "publish: rename blob")
    phases.wrap(warm_mod, "fsync_dir", "publish: fsync cache dir")
    phases.wrap(warm_mod.Warmer, "_remember_isa", "record host facts")
    phases.wrap(hostfacts, "cpu_signature", "host CPU signature")
    phases.wrap(hostfacts, "runtime_dist_version", "runtime version (metadata)")
    repo = ModelRepository(args["repository"])
    version = repo.version(args["model"], args.get("version", 1))
    spec = CacheSpec.make()
    t1 = time.perf_counter()
    cache = CacheDir(Path(args["cache_dir"])).check(create=True, writable=True)
    warmer = warm_mod.Warmer(cache, repository_root=repo.root)
    t2 = time.perf_counter()
    result = warmer.warm(version, spec)
    t3 = time.perf_counter()
    warmer.close()
    t4 = time.perf_counter()
    # _device wraps describe; report the import + Core part on its own.
    device_total = phases.seconds.pop("device total (incl. openvino import, Core)", 0.0)
    phases.seconds["openvino import + Core()"] = device_total - phases.seconds.get("device query (describe CPU)", 0.0)
    seconds = {name: phases.seconds[name] for name in WARM_STEPS if name in phases.seconds}
    seconds.update({name: value for name, value in phases.seconds.items() if name not in seconds})
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


def _instrument_verify(phases: Phases) -> None:
    """Wrap the steps of a verify; names starting with two spaces run inside the per-entry checks."""
    from airflow_ovcache.core import hostfacts
    from airflow_ovcache.core import verify as verify_mod
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.fingerprint import Fingerprinter, StatCache
    from airflow_ovcache.core.manifest import Manifest

    phases.wrap(StatCache, "load", "load stat cache")
    phases.wrap(CacheDir, "read_manifest", "read + parse manifest, with digest check (in verify, and again in _record)")
    phases.wrap(verify_mod.Verifier, "_check", "per-entry checks (Verifier._check)")
    phases.wrap(verify_mod, "regular_file_inside", "  lstat blob (regular_file_inside)")
    phases.wrap(verify_mod, "stat_identity", "  stat blob (stat_identity)")
    phases.wrap(verify_mod, "read_header", "  read blob header")
    phases.wrap(hostfacts, "runtime_build", "  runtime build string (first call imports OpenVINO)")
    phases.wrap(verify_mod.Verifier, "_isa", "  host ISA (host facts file)")
    phases.wrap(Fingerprinter, "fingerprint", "  fingerprint model folder (stat cache)")
    phases.wrap(verify_mod, "model_file_stat", "  stat model file")
    phases.wrap(verify_mod.Verifier, "_device", "  device check (ov.Core, describe)")
    phases.wrap(CacheDir, "blob_names", "orphan scan (list blobs)")
    phases.wrap(StatCache, "save", "save stat cache")
    phases.wrap(verify_mod.Verifier, "_record", "record verified times (Verifier._record)")
    phases.wrap(Manifest, "save", "  save manifest (asdict, digest, JSON, fsync, rename)")


def op_verify(args: dict) -> dict:
    from pathlib import Path

    t0 = time.perf_counter()
    from airflow_ovcache.core.cachedir import CacheDir
    from airflow_ovcache.core.verify import Verifier, summarize

    import_s = time.perf_counter() - t0
    root = Path(args["cache_dir"])
    check_devices = bool(args.get("check_devices", True))
    phases = Phases() if args.get("instrument") else None
    if phases is not None:
        _instrument_verify(phases)
    breakdowns = []

    def once() -> tuple[float, dict, bool]:
        if phases is not None:
            phases.seconds.clear()
            phases.calls.clear()
        start = time.perf_counter()
        cache = CacheDir(root).check(create=False, writable=False)
        verifier = Verifier(cache, checksum="changed", load_check=False, check_devices=check_devices)
        results = verifier.verify()
        seconds = time.perf_counter() - start
        if phases is not None:
            breakdowns.append({"total": seconds, "steps": phases.ordered()})
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


def _memory_kb() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process, in KiB."""
    rss = hwm = 0
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def op_cli_phases(args: dict) -> dict:
    """Run one ``ovcache`` command in this process; time and memory at the boundaries of its big steps."""
    import contextlib
    import io

    marks: list[list] = []

    def mark(name: str) -> None:
        rss, hwm = _memory_kb()
        marks.append([round(time.perf_counter() - T_START, 4), name, rss, hwm])

    mark("interpreter started")
    from airflow_ovcache.cli import main as cli
    from airflow_ovcache.cli import output
    from airflow_ovcache.core import cachedir, manifest, verify

    mark("agent CLI imported")

    def wrap(owner: object, attr: str, name: str) -> None:
        inner = getattr(owner, attr)

        def marked(*a, **k):  # type: ignore[no-untyped-def]
            mark(f"> {name}")
            try:
                return inner(*a, **k)
            finally:
                mark(f"< {name}")

        setattr(owner, attr, marked)

    wrap(cachedir.CacheDir, "load_manifest", "load + parse manifest (with digest)")
    wrap(manifest, "_digest", "manifest digest (canonical JSON + BLAKE3)")
    wrap(manifest.Manifest, "save", "save manifest")
    wrap(verify.Verifier, "verify", "Verifier.verify")
    wrap(verify.Verifier, "_record", "record verified times (re-read under lock, save)")
    wrap(output.Envelope, "dumps", "JSON envelope (dumps)")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(list(args["argv"]))
    mark("command returned")
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
