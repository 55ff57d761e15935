"""The child side of the serving-check benchmark: one serving start in a fresh interpreter, one JSON line.

    python serving_probe.py <kind> '<json args>'

Kinds, each what a serving process does after ``import openvino`` and ``Core()``:

``plain``    ``core.compile_model(path, "CPU", {"CACHE_DIR": dir})``: OpenVINO's own cached load;
``checked``  ``import airflow_ovcache.serving`` and ``load_checked(...)`` with the same arguments;
``before``   the same, with the package as it was before the copy-free check (``args["before_path"]``
             first on ``sys.path``), for the before/after comparison;
``fresh``    ``core.compile_model(path, "CPU")``: a compile without any cache;
``floor``    no load at all: only what any check that keeps the helper's guarantees must do, the
             way the helper does it: import blake3, read the blob (``args["blob"]``) into private
             memory and hash it; then hash the same bytes again, now resident (the hash alone).

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


# The helper's reader, as airflow_ovcache/serving.py sets it: huge pages from 2 MiB, one reader thread
# per core (up to four) from 16 MiB, blake3 on all cores from 4 MiB. Restated here because a benchmark
# uses only the package's public names (tests/benchmarks/test_render.py).
HUGE_PAGES_MIN = 2 << 20
PARALLEL_READ_MIN = 16 << 20
THREADED_HASH_MIN = 4 << 20


def _read_into(fd: int, view: memoryview) -> int:
    """Read the whole file into ``view`` in page-aligned slices, one thread each; the bytes read."""
    import os
    import threading

    size = len(view)
    readers = max(1, min(4, len(os.sched_getaffinity(0)))) if size >= PARALLEL_READ_MIN else 1
    step = (-(-size // readers) + 4095) // 4096 * 4096
    got = [0] * readers

    def read_slice(index: int) -> None:
        start, end = index * step, min(size, (index + 1) * step)
        done = start
        while done < end:
            n = os.preadv(fd, [view[done:end]], done)
            if n <= 0:
                break
            done += n
        got[index] = done - start

    threads = [threading.Thread(target=read_slice, args=(i,)) for i in range(1, readers)]
    for thread in threads:
        thread.start()
    read_slice(0)
    for thread in threads:
        thread.join()
    return sum(got)


def _floor(blob: str) -> dict[str, object]:
    """Import blake3, read ``blob`` into private memory and hash it, as ``load_checked`` does; each part in ms.

    The same reader as a checked load (the same threads and pages, see :func:`_read_into`), then it
    hashes the now-resident bytes a second time: that second hash is the part no check of every
    byte can avoid, whatever it does about memory.
    """
    t0 = time.perf_counter()
    import mmap
    import os

    import blake3

    t1 = time.perf_counter()
    fd = os.open(blob, os.O_RDONLY)
    size = os.fstat(fd).st_size
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if size >= HUGE_PAGES_MIN and hasattr(mmap, "MADV_HUGEPAGE"):
        memory.madvise(mmap.MADV_HUGEPAGE)
    view = memoryview(memory)
    done = _read_into(fd, view)
    os.close(fd)
    t2 = time.perf_counter()
    threads = blake3.blake3.AUTO if size >= THREADED_HASH_MIN else 1
    blake3.blake3(view, max_threads=threads).hexdigest()
    t3 = time.perf_counter()
    blake3.blake3(view, max_threads=threads).hexdigest()
    t4 = time.perf_counter()
    view.release()
    memory.close()
    if done != size:
        raise RuntimeError(f"read {done} of {size} bytes of {blob}")
    return {
        "import_ms": (t1 - t0) * 1000,
        "read_ms": (t2 - t1) * 1000,
        "hash_ms": (t3 - t2) * 1000,
        "rehash_ms": (t4 - t3) * 1000,
        "floor_ms": (t3 - t0) * 1000,
    }


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
    elif kind == "floor":
        compiled, loaded, extra = None, False, _floor(args["blob"])
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
