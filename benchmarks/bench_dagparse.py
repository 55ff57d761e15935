"""10. DAG file parse time: every example DAG against an empty DAG file.

Each run is a fresh interpreter (a scratch ``AIRFLOW_HOME``, no DAG-folder
settings from the environment) that first imports ``airflow.sdk`` (untimed in
the comparison: every DAG file pays it) and then parses one file, two ways:

* ``import``: execute the file as a module (``importlib``), which is what parsing
  a DAG file costs in Python terms;
* ``dag processor``: what Airflow's dag processor does with a file: load it with
  ``BundleDagBag`` (which also checks and collects the DAG objects) and serialize
  every DAG (``_serialize_dags``, a private helper of ``airflow.dag_processing.processor``),
  after ``gc.freeze()`` of what is already loaded, as the dag processor's manager does before
  it forks a file's processor. Without it, a file that allocates enough to set off a full
  collection pays for walking every object Airflow loaded (about 100 ms on this machine),
  which a real file processor does not.

The baseline is an empty DAG file with one ``@dag`` and one ``@task`` and no other
imports. Files run interleaved (ABBA), ``N`` runs each; the child also reports
whether anything imported OpenVINO and how many modules the file pulled in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from benchlib import REPO_DIR, Context, interleave, median_diff_ci, spawn, summary, table

NAME = "dagparse"
TITLE = "DAG file parse time: example DAGs vs an empty DAG file"

TARGET_MS = 50.0
EMPTY_DAG = '''"""An empty DAG: one @dag, one @task, no other imports (the parse-time baseline)."""

from airflow.sdk import dag, task


@dag(schedule=None, catchup=False)
def empty_baseline() -> None:
    @task
    def nothing() -> None:
        return None

    nothing()


baseline = empty_baseline()
'''

CHILD = r"""
import json, sys, time
mode, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
before = set(sys.modules)
split = {}
if mode == "import":
    import importlib.util
    spec = importlib.util.spec_from_file_location("dag_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = sorted(v.dag_id for v in vars(module).values() if isinstance(v, airflow.sdk.DAG))
    errors = {}
else:
    import os
    import structlog
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.dag_processing.processor import _serialize_dags
    # As the dag processor does before it forks a file's processor (DagFileProcessorManager.before_run,
    # airflow/dag_processing/manager.py): freeze what is loaded, so a garbage collection during the
    # parse walks the file's own objects, not the whole of Airflow (about 100 ms here otherwise).
    import gc
    gc.collect()
    gc.freeze()
    t1 = time.perf_counter()  # the loader's own modules are not the file's cost
    before = set(sys.modules)
    bag = BundleDagBag(dag_folder=path, bundle_path=os.path.dirname(path), bundle_name="bench", load_op_links=False)
    split["load_s"] = time.perf_counter() - t1
    t_ser = time.perf_counter()
    serialized, serialize_errors = _serialize_dags(bag, structlog.get_logger())
    split["serialize_s"] = time.perf_counter() - t_ser
    dags = sorted(d.dag_id for d in serialized)
    errors = {k: str(v)[-500:] for k, v in {**bag.import_errors, **serialize_errors}.items()}
t2 = time.perf_counter()
new = set(sys.modules) - before
print(json.dumps({"sdk_import_s": t1 - t0, "parse_s": t2 - t1, "split": split, "dags": dags, "errors": errors,
                  "new_modules": len(new), "openvino": any(m == "openvino" or m.startswith("openvino.") for m in sys.modules),
                  "provider_modules": sorted(m for m in new if m.startswith("airflow_ovcache"))}))
"""


def run(ctx: Context) -> dict[str, Any]:
    dag_dir = REPO_DIR / "dags"
    files = {"empty DAG (baseline)": ctx.fresh("dagparse/empty_dag.py")}
    files["empty DAG (baseline)"].write_text(EMPTY_DAG)
    for path in sorted(dag_dir.glob("*.py")):
        files[path.name] = path
    home = ctx.fresh("dagparse/airflow-home")
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OVCACHE_"))}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"))
    runs = ctx.repeats(13, 3)
    out: dict[str, Any] = {"runs": runs, "modes": {}, "problems": [], "target_ms": TARGET_MS}
    # One untimed run of each (byte-compiles the files, warms the page cache).
    for path in files.values():
        spawn([ctx.python, "-c", CHILD, "import", str(path)], env=env)
    for mode in ("import", "dag processor"):
        ctx.log(f"dagparse: {mode}, {runs} runs each of {len(files)} files")
        parse: dict[str, list[float]] = {k: [] for k in files}
        sdk: dict[str, list[float]] = {k: [] for k in files}
        info: dict[str, dict[str, Any]] = {}
        splits: dict[str, dict[str, list[float]]] = {}
        for name in interleave(list(files), runs):
            proc = spawn([ctx.python, "-c", CHILD, mode, str(files[name])], env=env)
            if proc.code != 0:
                raise RuntimeError(f"parsing {name} ({mode}) failed: {proc.err[-2000:]}")
            data = proc.json()
            parse[name].append(data["parse_s"])
            for key, secs in data["split"].items():
                splits.setdefault(name, {}).setdefault(key, []).append(secs)
            sdk[name].append(data["sdk_import_s"])
            info[name] = {k: data[k] for k in ("dags", "errors", "new_modules", "openvino", "provider_modules")}
            if data["errors"] or not data["dags"]:
                out["problems"].append(f"{name} ({mode}): dags {data['dags']}, errors {data['errors']}")
        base = [x * 1000 for x in parse["empty DAG (baseline)"]]
        out["modes"][mode] = {
            name: {
                "parse_ms": summary(parse[name], 1000, 2),
                "sdk_import_ms": summary(sdk[name], 1000, 1),
                "vs_empty_ms": median_diff_ci(base, [x * 1000 for x in parse[name]]),
                "split_ms": {k: summary(v, 1000, 2) for k, v in splits.get(name, {}).items()},
                **info[name],
            }
            for name in files
        }
    return out


def tables(result: dict[str, Any]) -> dict[str, str]:
    """The section's table by marker name: parse time per DAG file and mode."""
    m = result["measurements"]
    rows = []
    for mode, files in m["modes"].items():
        for name, f in files.items():
            d = f["vs_empty_ms"]
            baseline = name.startswith("empty")
            rows.append(
                [
                    f"`{name}`",
                    mode,
                    f"{f['parse_ms']['median']:.1f} ({f['parse_ms']['p25']:.1f}-{f['parse_ms']['p75']:.1f})",
                    "-" if baseline else f"{d['diff']:+.1f} ({d['lo']:+.1f} .. {d['hi']:+.1f})",
                    ", ".join(f["dags"]),
                    f["new_modules"],
                    "yes" if f["openvino"] else "no",
                ]
            )
    return {
        "dagparse": table(
            ["file", "parsed by", "parse ms", "vs empty DAG, ms (95% CI)", "DAGs", "modules it imported", "OpenVINO imported"],
            rows,
        )
    }


def plot(result: dict[str, Any], outdir: Any) -> list[tuple[str, str]]:
    import plots

    m = result["measurements"]
    fig, ax = plots.figure(1, width=8.0)
    modes = list(m["modes"])
    names = list(m["modes"][modes[0]])
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        meds = [m["modes"][mode][n]["parse_ms"]["median"] for n in names]
        lo = [meds[j] - m["modes"][mode][n]["parse_ms"]["p25"] for j, n in enumerate(names)]
        hi = [m["modes"][mode][n]["parse_ms"]["p75"] - meds[j] for j, n in enumerate(names)]
        ax.bar([j + i * width for j in range(len(names))], meds, width, yerr=[lo, hi], capsize=3, label=f"parsed by {mode}")
    for i, mode in enumerate(modes):
        base = m["modes"][mode][names[0]]["parse_ms"]["median"] + m["target_ms"]
        left, right = -0.5 * width + i * width, len(names) - 1 + 0.5 * width + i * width
        ax.plot([left, right], [base, base], color=f"C{i}", lw=0.9, ls=":", label=f"empty DAG ({mode}) + {m['target_ms']:g} ms")
    ax.set_xticks(
        [j + width * (len(modes) - 1) / 2 for j in range(len(names))],
        ["empty DAG" if n.startswith("empty") else Path(n).stem.replace("ovcache_", "") for n in names],
        fontsize=8,
    )
    ax.set_ylabel("parse time after `import airflow.sdk` (ms)")
    ax.set_title("DAG file parse time, fresh process")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    name = plots.save(fig, outdir, "dagparse.png")
    return [(name, "parse time of each example DAG file against an empty DAG file")]


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    m = result["measurements"]
    out = []
    for mode, files in m["modes"].items():
        for name, f in files.items():
            if name.startswith("empty"):
                continue
            d = f["vs_empty_ms"]
            out.append(
                {
                    "what": f"`dags/{name}` parse time vs an empty DAG file ({mode})",
                    "target": f"within {m['target_ms']:g} ms",
                    "result": f"{d['diff']:+.1f} ms (95% CI {d['lo']:+.1f} .. {d['hi']:+.1f}); OpenVINO {'imported' if f['openvino'] else 'not imported'}",
                    "met": d["diff"] <= m["target_ms"] and not f["openvino"] and not f["errors"],
                }
            )
    return out
