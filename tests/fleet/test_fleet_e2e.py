"""The example DAGs on a fleet of three hosts, each a network namespace with its own sshd and cache.

Release warm-up of version 2 over SSH on every host, version 1 retired only
after version 2 verified, and a serving-style compile inside each host's
namespace that loads from cache; then drift (a blob deleted on h2, a same-size
``model.bin`` swapped on h3) that the nightly run finds, repairs and reports;
then h3's sshd stopped, with h1 and h2 still completing and the summary naming h3.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.samples import build_ir, swap_weights_in_place
from tests.dags.conftest import example_dags  # noqa: F401 - fixture
from tests.infra.fleet import Fleet, Host
from tests.provider.conftest import load_dag, run_dag

pytestmark = [pytest.mark.root, pytest.mark.slow]

SERVE = """
import sys, openvino as ov
cm = ov.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2]})
print(bool(cm.get_property("LOADED_FROM_CACHE")))
"""


def versions(host: Host) -> list[tuple[str, int]]:
    manifest = Manifest.load(host.cache_dir / ".ovcache" / "manifest.json")
    return sorted((e.model, e.version) for e in manifest.entries.values())


def serve_in_namespace(host: Host, version: int) -> bool:
    """A serving application's compile, run inside the host's own namespace against its cache."""
    model = host.repository / "mlp" / str(version) / "model.xml"
    proc = host.run([sys.executable, "-c", SERVE, str(model), str(host.cache_dir)], check=True, timeout=120)
    return proc.stdout.strip().splitlines()[-1] == "True"


def step_times(dag_id: str, run_id: str, task_id: str) -> dict[int, tuple[object, object]]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.map_index, TaskInstance.start_date, TaskInstance.end_date).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id
            )
        ).all()
    return {index: (start, end) for index, start, end in rows}


@pytest.fixture
def model_versions(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("releases")
    return {v: build_ir(root / str(v) / "model.xml", size_mb=2.0, seed=100 + v).parent for v in (1, 2, 3)}


def test_release_nightly_and_a_host_down_on_three_namespaced_hosts(
    example_dags: Path,  # noqa: F811
    make_fleet: Callable[..., Fleet],
    model_versions: dict[int, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = make_fleet(3)
    h1, h2, h3 = fleet
    for host in fleet:
        host.add_model(model_versions[1], "mlp", 1)
    monkeypatch.setenv("OVCACHE_INVENTORY", str(fleet.inventory_toml(retain="latest:1")))
    monkeypatch.setenv("OVCACHE_RELEASE_MODELS", "mlp")
    monkeypatch.setenv("OVCACHE_WAIT_FOR_VERSION_SECONDS", "10")
    monkeypatch.setenv("OVCACHE_REPORT_DIR", str(tmp_path / "reports"))
    warmup = load_dag("ovcache_release_warmup", "release_warmup")
    nightly = load_dag("ovcache_nightly_verify", "nightly_verify")

    # -- release version 1, then version 2 ------------------------------------------------------
    assert run_dag(warmup, conf={"model": "mlp", "version": 1}).state == "success"
    assert [versions(h) for h in fleet] == [[("mlp", 1)]] * 3
    for host in fleet:
        host.add_model(model_versions[2], "mlp", 2)
    release = run_dag(warmup, conf={"model": "mlp", "version": 2})
    assert release.state == "success", [(t.task_id, t.map_index, t.state) for t in release.tasks]
    assert [versions(h) for h in fleet] == [[("mlp", 2)]] * 3  # version 1 retired everywhere
    assert all(len(h.blobs()) == 1 for h in fleet)
    outcomes = {o.xcom["host"]: o.xcom for o in release.mapped("on_host.outcome")}
    assert sorted(outcomes) == ["h1", "h2", "h3"]
    verified = step_times(warmup.dag_id, release.run_id, "on_host.verify")
    invalidated = step_times(warmup.dag_id, release.run_id, "on_host.invalidate")
    for index, (start, _) in invalidated.items():
        assert start >= verified[index][1], "invalidation started before version 2 was verified"  # type: ignore[operator]
    for name, outcome in outcomes.items():
        assert outcome["verify"]["summary"] == {"ok": 1}, name
        assert [(r["version"], r["reason"]) for r in outcome["invalidate"]["removals"]] == [(1, "retired")], name
    assert all(serve_in_namespace(h, 2) for h in fleet)

    # -- drift: a blob deleted on h2, model.bin swapped in place on h3 --------------------------
    for blob in h2.blobs():
        blob.unlink()
    swap_weights_in_place(h3.repository / "mlp" / "2" / "model.bin", seed=7)
    night = run_dag(nightly)
    assert night.state == "success", [(t.task_id, t.map_index, t.state) for t in night.tasks]
    report = night.task("report").xcom
    assert report["counts"] == {"ok": 1, "repaired": 2, "unrepaired": 0, "unreachable": 0, "host-error": 0}
    cells = {c["host"]: c for c in json.loads(Path(report["json"]).read_text())["cells"]}
    assert (cells["h1"]["outcome"], cells["h2"]["before"], cells["h3"]["before"]) == ("ok", "missing", "stale-model")
    page = Path(report["html"]).read_text()
    assert "repaired (missing)" in page and "repaired (stale-model)" in page
    assert all(serve_in_namespace(h, 2) for h in fleet)

    # -- h3 down: h1 and h2 still complete, and the summary names h3 ----------------------------
    for host in fleet:
        host.add_model(model_versions[3], "mlp", 3)
    h3.stop_sshd()
    down = run_dag(warmup, conf={"model": "mlp", "version": 3})
    assert down.state == "failed"
    by_host = {o.xcom["host"]: o.xcom for o in down.mapped("on_host.outcome")}
    assert by_host["h1"]["ok"] and by_host["h2"]["ok"]
    assert versions(h1) == versions(h2) == [("mlp", 3)]
    assert not by_host["h3"]["ok"] and by_host["h3"]["host"] == "h3" and "cannot connect" in by_host["h3"]["reason"]
    assert by_host["h3"]["failure_kind"] == "cannot-connect"  # the summary line names the host; the reason need not repeat it
    assert versions(h3) == [("mlp", 2)]  # nothing of h3 was touched
    summary = down.task("summary")
    assert summary.state == "failed"
    night = run_dag(nightly)
    assert night.state == "failed"
    latest = json.loads((tmp_path / "reports" / "latest.json").read_text())
    assert latest["unreachable"].keys() == {"h3"} and latest["problems"][0].startswith("host h3: unreachable")
    shutil.rmtree(tmp_path / "reports")
