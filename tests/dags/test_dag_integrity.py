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


# What only a running task needs: the hook, its connection reader, agent command lines and report
# readers, the envelope, the transports, the conditions a sensor or trigger polls, and the triggers
# a sensor defers to. A DAG file that pulls one in makes every DAG processor pay for it on every parse.
TRIGGER_MODULES = tuple(f"airflow_ovcache.triggers.{name}" for name in ("base", "blob", "device", "model_version", "served"))
TASK_ONLY_MODULES = TRIGGER_MODULES + tuple(
    f"airflow_ovcache.hooks.{name}"
    for name in (
        "ovcache",
        "config",
        "commands",
        "reports",
        "envelope",
        "keys",
        "transport",
        "transport_local",
        "transport_ssh",
        "store_relay",
        "connection_check",
        "conditions",
    )
)

LOADED_PROBE = """
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("airflow_ovcache"))))
"""

# Each DAG file as the DAG processor sees it, and the release DAG with watched release assets,
# which builds the repository watcher's trigger at parse time.
PARSES = [(path, {}) for path in DAGS] + [
    (next(p for p in DAGS if p.stem == "ovcache_release_warmup"), {"OVCACHE_WATCH_CONN_ID": "ovcache_source"})
]


@pytest.mark.parametrize(("path", "settings"), PARSES, ids=[p.name + ("-watched" if s else "") for p, s in PARSES])
def test_dag_file_leaves_the_hook_side_to_the_tasks(path: Path, settings: dict[str, str], tmp_path: Path) -> None:
    """Regression: operators/base.py, sensors/base.py, triggers/base.py and hooks/conditions.py imported
    the hook, and with it hooks.commands and hooks.reports, at module level: the largest part of a parse.
    Then the sensors imported their triggers (and Airflow's trigger base, about 10 ms) and the
    operators the connection reader, for a default connection id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OVCACHE_")} | settings
    env["AIRFLOW_HOME"] = str(tmp_path)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    proc = subprocess.run([sys.executable, "-c", LOADED_PROBE, str(path)], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "airflow_ovcache.operators.base" in loaded or "airflow_ovcache.sensors.base" in loaded, "the probe saw no operator"
    allowed: set[str] = set()
    if settings:
        assert "airflow_ovcache.triggers.new_version" in loaded, "the watched release assets built no trigger"
        allowed = {"airflow_ovcache.triggers.base"}  # an asset watcher is given its trigger when the file is parsed
    early = sorted(loaded.intersection(TASK_ONLY_MODULES) - allowed)
    assert not early, f"{path.name} imports {', '.join(early)} at parse time: import it where the task runs"


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
