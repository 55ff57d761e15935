"""Run the benchmarks, then fill the tables of docs/benchmarks.md (and redraw its plots) from their results.

    .venv/bin/python benchmarks/run.py               # everything (what `make bench` runs), about 15 minutes
    .venv/bin/python benchmarks/run.py --quick       # fewer repeats, smaller inputs: a smoke run
    .venv/bin/python benchmarks/run.py --only verify,fingerprint
    .venv/bin/python benchmarks/run.py --render      # only refill the page's tables and redraw the plots from the stored JSON

Each benchmark is a module ``bench_<name>.py`` with ``run(ctx)``, ``tables(result)``
and ``targets(result)``; its result goes to ``results/<name>.json`` together with
a description of the machine, and the page's tables are filled from those files only
(its prose is written by hand; see ``render.py``).
Benchmarks that fail leave their previous result in place and make the exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402
import render  # noqa: E402


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _select(only: str | None) -> list[str]:
    names = list(benchlib.BENCHMARKS)
    if not only:
        return names
    wanted = [w.strip() for w in only.split(",") if w.strip()]
    chosen = []
    for want in wanted:
        module = want if want.startswith("bench_") else f"bench_{want}"
        if module not in names:
            raise SystemExit(f"unknown benchmark {want!r}; choose from {', '.join(n[len('bench_') :] for n in names)}")
        chosen.append(module)
    return [n for n in names if n in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and smaller inputs (a smoke run; marked in the results)"
    )
    parser.add_argument(
        "--only", help=f"comma-separated benchmarks to run ({', '.join(n[len('bench_') :] for n in benchlib.BENCHMARKS)})"
    )
    parser.add_argument("--workdir", type=Path, help="where to build models and caches (default: the system temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory afterwards")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        help="before each benchmark, wait up to this many seconds for other processes to leave the CPU idle (default 30)",
    )
    parser.add_argument("--render", action="store_true", help="do not run anything; refill the page's tables from stored results")
    parser.add_argument("--results-dir", type=Path, default=benchlib.RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=benchlib.DOC_PATH)
    args = parser.parse_args(argv)

    failed: list[str] = []
    if not args.render:
        parent = args.workdir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        workdir = Path(tempfile.mkdtemp(prefix="ovcache-bench-", dir=parent))
        ctx = benchlib.Context(workdir=workdir, quick=args.quick)
        machine = benchlib.machine(workdir)
        machine["bytecode_cache"] = benchlib.enable_bytecode_cache()
        ctx.log(f"work directory {workdir} ({machine['workdir_fs']['type']}); {'quick' if args.quick else 'full'} run")
        total_start = time.perf_counter()
        try:
            for module_name in _select(args.only):
                module = importlib.import_module(module_name)
                ctx.log(f"== {module.NAME}: {module.TITLE}")
                quiet = benchlib.wait_for_quiet(args.quiet_wait) if args.quiet_wait > 0 else None
                if quiet and not quiet["quiet"]:
                    ctx.log(f"   other processes still use {quiet['others_share']:.0%} of the CPU; measuring anyway")
                started = datetime.now(timezone.utc).isoformat(timespec="seconds")
                load_before = benchlib.loadavg()
                cpu_before = benchlib.cpu_seconds()
                start = time.perf_counter()
                try:
                    measurements = module.run(ctx)
                except Exception:  # noqa: BLE001 - report it, keep the other benchmarks' results
                    traceback.print_exc()
                    failed.append(module.NAME)
                    continue
                others = benchlib.others_share(cpu_before, benchlib.cpu_seconds())
                result = {
                    "name": module.NAME,
                    "title": module.TITLE,
                    "quick": args.quick,
                    "started": started,
                    "seconds": round(time.perf_counter() - start, 1),
                    "loadavg_before": load_before,
                    "loadavg_after": benchlib.loadavg(),
                    # CPU used by processes other than the benchmark's own, as a share of the machine.
                    "others_cpu_share": others,
                    "quiet_before": quiet,
                    "machine": machine,
                    "measurements": measurements,
                }
                result["targets"] = module.targets(result)
                _write_json(args.results_dir / f"{module.NAME}.json", result)
                ctx.log(f"   {module.NAME} done in {result['seconds']:.0f}s -> {args.results_dir / (module.NAME + '.json')}")
        finally:
            if args.keep:
                ctx.log(f"kept {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        ctx.log(f"all done in {time.perf_counter() - total_start:.0f}s")
    if render.update_doc(args.results_dir, args.doc):
        failed.append("render")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
