"""Every file in dags/ imports cleanly and fast, without OpenVINO, the network or the inventory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = sorted((Path(__file__).resolve().parents[2] / "dags").glob("*.py"))

PROBE = """
import json, sys, time, importlib.util
import airflow.sdk  # Airflow itself is loaded in any DAG processor; time the DAG file's own work
t = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
took = time.perf_counter() - t
from airflow.sdk import DAG
from airflow.sdk.definitions._internal.contextmanager import DagContext
found = [*vars(module).values(), *(d for d, _ in DagContext.autoregistered_dags)]
dags = sorted({d.dag_id for d in found if isinstance(d, DAG)})
print(json.dumps({"seconds": took, "dags": dags, "openvino": "openvino" in sys.modules,
                  "paramiko": "paramiko" in sys.modules}))
"""


@pytest.mark.parametrize("path", DAGS, ids=[p.name for p in DAGS])
def test_dag_file_imports_fast_and_clean(path: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVCACHE_")}
    env["AIRFLOW_HOME"] = str(tmp_path)  # an empty home: no inventory, no connections, no database
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    # The first import of Airflow in a new home writes airflow.cfg; do that outside the measurement.
    subprocess.run([sys.executable, "-c", "import airflow.sdk"], env=env, check=True, capture_output=True)
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["dags"], f"{path.name} defines no DAG"
    assert not report["openvino"], f"{path.name} imports OpenVINO at parse time"
    assert not report["paramiko"], f"{path.name} imports paramiko at parse time"
    assert report["seconds"] < 1.0, f"{path.name} took {report['seconds']:.2f}s to import"


def test_dagbag_has_no_import_errors(example_dags: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(example_dags))
    assert bag.import_errors == {}
    assert {"ovcache_release_warmup", "ovcache_nightly_verify"} <= set(bag.dag_ids)


def test_release_assets_carry_a_repository_watcher_when_asked(example_dags: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.provider.conftest import load_dag

    monkeypatch.setenv("OVCACHE_RELEASE_MODELS", "mlp,tiny")
    plain = load_dag("ovcache_release_warmup", "release_warmup")
    assert all(not asset.watchers for asset in plain.timetable.asset_condition.objects)
    monkeypatch.setenv("OVCACHE_WATCH_CONN_ID", "ovcache_source")
    monkeypatch.setenv("OVCACHE_WATCH_INTERVAL_SECONDS", "15")
    watched = load_dag("ovcache_release_warmup", "release_warmup")
    assets = {a.uri: a for a in watched.timetable.asset_condition.objects}
    assert set(assets) == {"ovmodel://models/mlp", "ovmodel://models/tiny"}
    for uri, asset in assets.items():
        (watcher,) = asset.watchers
        classpath, kwargs = watcher.trigger.serialize()
        assert classpath.endswith("OvcacheNewVersionTrigger")
        assert kwargs["ovcache_conn_id"] == "ovcache_source" and kwargs["poke_interval"] == 15.0
        assert kwargs["models"] == [uri.rsplit("/", 1)[1]]
