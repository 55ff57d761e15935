"""Fill the tables of docs/benchmarks.md from benchmarks/results/*.json (and nothing else); redraw the plots.

Usage: ``.venv/bin/python benchmarks/render.py [--results-dir DIR] [--doc PATH]``

The page's prose is written by hand. Each generated table sits between two marker
comments, ``<!-- table:NAME -->`` and ``<!-- /table -->``; only what is between them is
replaced, and a table with no marker makes the exit code 1. The names are ``machine``, ``targets``, ``<benchmark>.run`` (when and under what
load each benchmark ran) and those each module's ``tables(result)`` returns.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

MARKER = re.compile(r"(<!-- table:(?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _load(results_dir: Path) -> list[dict[str, Any]]:
    out = []
    for module_name in benchlib.BENCHMARKS:
        name = module_name[len("bench_") :]
        path = results_dir / f"{name}.json"
        if path.exists():
            data = json.loads(path.read_text())
            data["_module"] = module_name
            out.append(data)
    return out


def _machine_table(m: dict[str, Any]) -> str:
    fs = m.get("workdir_fs", {})
    rows = [
        ["CPU", f"{m.get('cpu_model')} ({m.get('arch')})"],
        ["cores", f"{m.get('logical_cpus')} logical, {m.get('usable_cpus')} usable by the process"],
        ["ISA flags", ", ".join(m.get("isa_flags") or []) or "-"],
        ["RAM", f"{m.get('ram_gib')} GiB"],
        ["OS / kernel", f"{m.get('os')} / {m.get('kernel')}"],
        ["Python", m.get("python")],
        ["OpenVINO", m.get("openvino")],
        ["blake3 / numpy", f"{m.get('blake3')} / {m.get('numpy')}"],
        [
            "airflow-ovcache",
            f"{m.get('airflow_ovcache')} (git {m.get('git_head')}"
            + (f", with uncommitted changes in {len(m['git_dirty'])} files of the package" if m.get("git_dirty") else "")
            + ")",
        ],
        ["work directory filesystem", f"{fs.get('type')} on {fs.get('device')}, mounted at {fs.get('mount')}"],
        ["Python bytecode cache", m.get("bytecode_cache") or "as the environment had it"],
        ["accelerator", "none (OpenVINO on CPU)"],
    ]
    return benchlib.table(["", ""], rows)


def _run_table(result: dict[str, Any], machine: dict[str, Any]) -> str:
    """When one benchmark ran, for how long, and what else the machine did meanwhile."""
    load = result.get("loadavg_before") or []
    load_after = result.get("loadavg_after") or []
    share = result.get("others_cpu_share")
    same = benchlib.machine_key(result["machine"]) == benchlib.machine_key(machine)
    row = [
        result["started"],
        f"{result['seconds']:.0f} s",
        "yes (fewer repeats, smaller inputs: indicative only)" if result.get("quick") else "no",
        f"{load[0] if load else '?'} / {load_after[0] if load_after else '?'}",
        "?" if share is None else f"{share:.0%}",
        "the one above" if same else "a different machine or stack (see its JSON)",
    ]
    header = ["started", "took", "quick run", "load average (1 min) before / after", "CPU used by other processes", "machine"]
    return benchlib.table(header, [row])


def tables(results_dir: Path) -> dict[str, str]:
    """Every generated table by marker name, from the stored results only."""
    results = _load(results_dir)
    if not results:
        return {}
    machine = results[0]["machine"]
    out = {"machine": _machine_table(machine)}
    rows = [
        [t["what"], t["target"], t["result"], "**met**" if t["met"] else "**missed**"]
        for r in results
        for t in r.get("targets", [])
    ]
    out["targets"] = benchlib.table(["measurement", "target", "measured", ""], rows)
    for r in results:
        out[f"{r['name']}.run"] = _run_table(r, machine)
        out.update(importlib.import_module(r["_module"]).tables(r))
    return out


def fill(doc: str, generated: dict[str, str]) -> tuple[str, list[str], list[str]]:
    """The page with each marked table replaced; the markers left as they were; the tables with no marker.

    A marker whose table was not generated (its benchmark has no results there) keeps what it had.

    :param doc: the page's text.
    :param generated: the tables by marker name (:func:`tables`).
    """
    kept: list[str] = []
    seen: set[str] = set()

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        seen.add(name)
        if name not in generated:
            kept.append(name)
            return match.group(0)
        return f"{match.group(1)}{generated[name]}\n{match.group(4)}"

    out = MARKER.sub(replace, doc)
    return out, kept, sorted(set(generated) - seen)


def draw_plots(results_dir: Path, img_dir: Path) -> None:
    """Redraw each module's plots into ``img_dir`` (skipped, with a note, without matplotlib)."""
    import plots

    for r in _load(results_dir):
        module = importlib.import_module(r["_module"])
        if not hasattr(module, "plot"):
            continue
        if not plots.available():
            print(f"matplotlib is not installed: plots of {r['name']} not redrawn (pip install -e '.[bench]')", file=sys.stderr)
            continue
        img_dir.mkdir(parents=True, exist_ok=True)
        module.plot(r, img_dir)


def update_doc(results_dir: Path, doc: Path) -> int:
    """Fill the page's tables and redraw its plots; 1 if a table has no marker in the page (write its section).

    :param results_dir: the folder of ``<name>.json`` results.
    :param doc: the hand-written page with its table markers.
    """
    text, kept, unplaced = fill(doc.read_text(), tables(results_dir))
    doc.write_text(text)
    draw_plots(results_dir, doc.parent / benchlib.IMG_DIR.name)
    if kept:
        print(f"{doc}: no results for {', '.join(kept)}; kept the page's copy of those tables", file=sys.stderr)
    for name in unplaced:
        print(f"{doc}: table {name!r} has no <!-- table:{name} --> marker; add it to the page", file=sys.stderr)
    print(f"wrote {doc}", file=sys.stderr)
    return 1 if unplaced else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=benchlib.RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=benchlib.DOC_PATH)
    args = parser.parse_args(argv)
    return update_doc(args.results_dir, args.doc)


if __name__ == "__main__":
    raise SystemExit(main())
