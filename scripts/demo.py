"""``make demo``: the release warm-up and the nightly verification DAGs, end to end, on embedded defaults.

Everything lives under ``.demo/``: a sample model repository, one host (this
machine, reached by a local subprocess), its cache directory, a fleet
inventory listing it, and an Airflow home with a SQLite metadata database. The
DAGs are the real ones from ``dags/``, run with ``dag.test()``:

1. release warm-up of ``classifier`` version 2 and of ``detector`` version 1;
2. nightly verification, which verifies with a load from cache, repairs, and
   writes the HTML and JSON report.

Then it prints what happened per host and model, and where the report is.
Run it twice: the second release run finds every blob already warm (a cache
hit, nothing compiled).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
MODELS = DEMO / "models"
CACHE = DEMO / "cache"
HOME = DEMO / "airflow"
REPORTS = DEMO / "reports"
INVENTORY = DEMO / "fleet.toml"
HOST = os.environ.get("OVCACHE_DEMO_HOST") or socket.gethostname().split(".")[0] or "localhost"
RELEASES = [("classifier", 2), ("detector", 1)]


def setup() -> None:
    DEMO.mkdir(exist_ok=True)
    if not MODELS.exists():
        print("building a sample model repository (two transformer-shaped models, three versions) ...", flush=True)
        cmd = [sys.executable, "-m", "airflow_ovcache.cli.main", "sample-repository", str(MODELS), "-q"]
        cmd += ["--model", "classifier:2", "--model", "detector:1", "--size-mb", "8", "--kind", "transformer"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    INVENTORY.write_text(
        "# The demo fleet: this machine, reached by a local subprocess.\n"
        "[defaults]\n"
        'conn_id = "ovcache_local"\n'
        'retain = "latest:2"\n\n'
        "[[hosts]]\n"
        f'name = "{HOST}"\n'
        f'cache_dir = "{CACHE}"\n'
        f'repository = "{MODELS}"\n'
        'devices = ["CPU"]\n'
    )
    agent = f"{sys.executable} -m airflow_ovcache.cli.main"
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME}/airflow.db",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",  # the demo prints its own account of what happened
            "AIRFLOW_CONN_OVCACHE_LOCAL": json.dumps(
                {"conn_type": "ovcache", "extra": {"transport": "local", "agent_command": agent}}
            ),
            "OVCACHE_INVENTORY": str(INVENTORY),
            "OVCACHE_REPORT_DIR": str(REPORTS),
            "OVCACHE_RELEASE_MODELS": "classifier,detector",
        }
    )


def load_dag_file(name: str, attr: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "dags" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


def xcom(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=run_id, key="return_value", task_ids=task_id, dag_ids=dag_id, map_indexes=map_index)
        ).first()
        return XComModel.deserialize_value(row) if row is not None else None


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # third-party noise, not the demo's story
    setup()
    HOME.mkdir(parents=True, exist_ok=True)
    from airflow.utils import db

    db.initdb()  # idempotent: creates or upgrades the SQLite metadata database
    warmup = load_dag_file("ovcache_release_warmup", "release_warmup")
    nightly = load_dag_file("ovcache_nightly_verify", "nightly_verify")

    rows = []
    failed = False
    for model, version in RELEASES:
        print(f"\n== release warm-up: {model} version {version} on {HOST} ==", flush=True)
        started = time.perf_counter()
        run = warmup.test(run_conf={"model": model, "version": version})
        summary = xcom(warmup.dag_id, run.run_id, "summary")
        outcome = (summary or {}).get("outcomes", [{}])[0] if summary else xcom(warmup.dag_id, run.run_id, "on_host.outcome", 0)
        print(f"   run {run.state} in {time.perf_counter() - started:.1f}s")
        failed |= str(run.state) != "success"
        if outcome:
            item = ((outcome.get("warm") or {}).get("items") or [{}])[0]
            removed = (outcome.get("invalidate") or {}).get("removals") or []
            rows.append(
                (
                    outcome["host"],
                    model,
                    version,
                    item.get("status", "-"),
                    item.get("load_ms"),
                    len(removed),
                    outcome.get("reason"),
                )
            )

    print(f"\n== nightly verification on {HOST} ==", flush=True)
    run = nightly.test()
    report = xcom(nightly.dag_id, run.run_id, "report") or {}
    failed |= str(run.state) != "success"
    cells = json.loads(Path(report["json"]).read_text())["cells"] if report.get("json") else []

    print("\nrelease warm-up, per host and model:")
    print(f"  {'host':<16} {'model':<12} {'version':>7}  {'warm':<10} {'load from cache':>15}  {'old blobs removed':>17}")
    for host, model, version, status, load_ms, removed, reason in rows:
        load = f"{load_ms:.1f} ms" if load_ms is not None else "-"
        print(
            f"  {host:<16} {model:<12} {version:>7}  {status:<10} {load:>15}  {removed:>17}" + (f"  {reason}" if reason else "")
        )
    print("\nnightly verification, per host and model:")
    for cell in cells:
        load = f"{cell['load_ms']:.1f} ms" if cell.get("load_ms") is not None else "-"
        size = f"{(cell.get('size') or 0) / (1 << 20):.1f} MiB"
        print(
            f"  {cell['host']:<16} {cell['model']:<12} {cell['version']:>7}  {cell['after']:<10} {size:>10} {load:>10}  ({cell['outcome']})"
        )
    if report:
        print(f"\nreport: {report.get('html')}\n        {report.get('json')}")
    print("\nRun 'make demo' again: the release warm-up then finds every blob warm ('unchanged', nothing compiled).")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
