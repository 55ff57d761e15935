"""The child side of the serving-check benchmark: one serving start in a fresh interpreter, one JSON line.

    python serving_probe.py <kind> '<json args>'

Kinds, each what a serving process does after ``import openvino`` and ``Core()``:

``plain``    ``core.compile_model(path, "CPU", {"CACHE_DIR": dir})``: OpenVINO's own cached load;
``checked``  ``import airflow_ovcache.serving`` and ``load_checked(...)`` with the same arguments;
``before``   the same, with the package as it was before the copy-free check (``args["before_path"]``
             first on ``sys.path``), for the before/after comparison;
``fresh``    ``core.compile_model(path, "CPU")``: a compile without any cache.

The timed *step* starts before the helper's import, so a checked load pays it as a server does.
With ``"hold": true`` the child prints its line after the load, then waits for its standard
input to close, so that the parent can look at the memory of several loaded servers at once.
"""

from __future__ import annotations

import json
import sys
import time

T_START = time.perf_counter()


def _status() -> dict[str, int]:
    """This process's resident memory by kind, in KiB (``/proc/self/status``)."""
    out = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0])
    return out


def main() -> None:
    kind, args = sys.argv[1], json.loads(sys.argv[2])
    if kind == "before":
        sys.path.insert(0, args["before_path"])
    t0 = time.perf_counter()
    import openvino as ov

    core = ov.Core()
    t1 = time.perf_counter()
    import threading

    # Threads besides this one at the start of the step: OpenVINO's telemetry sender would be one.
    threads = [t.name for t in threading.enumerate() if t is not threading.current_thread()]
    config = {"CACHE_DIR": args["cache_dir"], **args.get("properties", {})}
    extra: dict[str, object] = {}
    if kind == "plain":
        compiled = core.compile_model(args["model"], "CPU", config)
        loaded = bool(compiled.get_property("LOADED_FROM_CACHE"))
    elif kind == "fresh":
        compiled = core.compile_model(args["model"], "CPU", args.get("properties", {}))
        loaded = bool(compiled.get_property("LOADED_FROM_CACHE"))
    else:
        from airflow_ovcache import serving

        result = serving.load_checked(core, args["model"], "CPU", config)
        compiled, loaded = result.compiled, result.loaded_from_cache
        extra = {
            "check_ms": result.check_ms,
            "load_ms": result.compile_ms,
            "isolation": getattr(result, "isolation", None) or "copy",
            "package": serving.__file__,
        }
    t2 = time.perf_counter()
    line = {
        "kind": kind,
        "import_core_s": t1 - t0,
        "step_s": t2 - t1,
        "since_start_s": t2 - T_START,
        "loaded_from_cache": loaded,
        "other_threads": threads,
        "memory_kib": _status(),
        **extra,
    }
    print(json.dumps(line), flush=True)
    if args.get("hold"):
        sys.stdin.read()  # keep the compiled model alive until the parent has looked
    del compiled


if __name__ == "__main__":
    main()
