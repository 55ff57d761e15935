"""The release warm-up DAG under dag.test(): real Airflow on SQLite, real agent, real compiles."""

from __future__ import annotations

from pathlib import Path

from airflow_ovcache.core.manifest import Manifest
from tests.conftest import blobs_in
from tests.provider.conftest import load_dag, run_asset_triggered, run_dag


def _versions(cache: Path) -> list[tuple[str, int]]:
    return sorted((e.model, e.version) for e in Manifest.load(cache / ".ovcache" / "manifest.json").entries.values())


def test_release_warms_every_host_then_retires_the_old_version(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    hosts = fleet(["h1", "h2"])
    dag = load_dag("ovcache_release_warmup", "release_warmup")

    first = run_dag(dag, conf={"model": "mlp", "version": 1})
    assert first.state == "success", [(t.task_id, t.map_index, t.state) for t in first.tasks]
    assert {h: _versions(p["cache"]) for h, p in hosts.items()} == {"h1": [("mlp", 1)], "h2": [("mlp", 1)]}

    second = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert second.state == "success"
    # version 2 warmed and verified everywhere, and only then version 1 retired (retain latest:1)
    assert {h: _versions(p["cache"]) for h, p in hosts.items()} == {"h1": [("mlp", 2)], "h2": [("mlp", 2)]}
    assert all(len(blobs_in(p["cache"])) == 1 for p in hosts.values())
    # the inventory's compile properties reached the warm-up: the blob is the server's
    for paths in hosts.values():
        (entry,) = Manifest.load(paths["cache"] / ".ovcache" / "manifest.json").entries.values()
        assert entry.spec["properties"] == {"PERFORMANCE_HINT": "LATENCY"}
    outcomes = second.mapped("on_host.outcome")
    assert [(o.xcom["host"], o.xcom["ok"]) for o in outcomes] == [("h1", True), ("h2", True)]
    for o in outcomes:
        assert o.xcom["warm"]["items"][0]["loaded_from_cache"] is True
        assert o.xcom["verify"]["summary"] == {"ok": 1}
        assert [(r["model"], r["version"], r["reason"]) for r in o.xcom["invalidate"]["removals"]] == [("mlp", 1, "retired")]
    # the tasks ran in order on each host: the version sensor first, invalidation last
    for step in ("on_host.wait_for_version", "on_host.check_devices", "on_host.warm", "on_host.verify", "on_host.invalidate"):
        assert [t.state for t in second.mapped(step)] == ["success", "success"], step
    assert second.task("summary").xcom == {"hosts": 2, "failures": 0, "outcomes": [o.xcom for o in outcomes]}
    # every mapped instance is labelled with its host (and model and version), not [0] and [1]
    assert [t.label for t in second.mapped("on_host.warm")] == ["h1 · mlp v2", "h2 · mlp v2"]
    assert [t.label for t in second.mapped("on_host.check_devices")] == ["h1", "h2"]
    assert [t.label for t in outcomes] == ["h1 · mlp v2", "h2 · mlp v2"]
    assert [t.label for t in second.mapped("on_host.wait_for_version")] == ["h1 · mlp v2", "h2 · mlp v2"]


def test_one_failing_host_does_not_stop_the_others(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    hosts = fleet(["h1", "h2", "h3"], broken={"h2": "cache-is-a-file", "h3": "no-agent"})
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})

    assert result.state == "failed"
    assert result.task("summary").state == "failed"
    by_host = {o.xcom["host"]: o.xcom for o in result.mapped("on_host.outcome")}
    assert by_host["h1"]["ok"] is True and _versions(hosts["h1"]["cache"]) == [("mlp", 2)]
    assert by_host["h2"]["ok"] is False and by_host["h2"]["failed_step"] == "warm"
    assert "h2" in by_host["h2"]["reason"] and "is a file" in by_host["h2"]["reason"]
    assert by_host["h3"]["ok"] is False and by_host["h3"]["failed_step"] == "wait_for_version"
    assert "pip install airflow-ovcache" in by_host["h3"]["reason"]
    assert hosts["h2"]["cache"].read_text() == "not a directory"  # nothing of the broken host was touched


def test_release_event_schedules_the_warmup(example_dags: Path, fleet) -> None:  # type: ignore[no-untyped-def]
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_ovcache.assets import model_release_uri

    hosts = fleet(["h1"])
    dag = load_dag("ovcache_release_warmup", "release_warmup")
    run_dag(dag, conf={"model": "mlp", "version": 1})  # syncs the DAG and its assets to the database
    with create_session() as session:
        from airflow.assets.manager import AssetManager

        asset = session.scalar(select(AssetModel).where(AssetModel.uri == model_release_uri("models", "mlp")))
        assert asset is not None
        AssetManager().register_asset_change(asset=asset.to_serialized(), extra={"version": 2}, session=session)
        session.commit()
    result = run_asset_triggered(dag)
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    assert result.task("releases").xcom == [{"model": "mlp", "version": 2}]
    assert _versions(hosts["h1"]["cache"]) == [("mlp", 2)]


def test_an_ovms_host_is_warmed_from_its_servers_config(example_dags: Path, fleet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The inventory points at OVMS's own config.json; the blob the release warms is the one OVMS's calls read."""
    import json

    from tests.core.test_ovms import run_ovms_reproduction

    hosts = fleet(["h1"])
    models = hosts["h1"]["models"]
    config = tmp_path / "ovms" / "config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"model_config_list": [{"config": {"name": "mlp", "base_path": "/models/mlp"}}]}))
    inventory = Path(__import__("os").environ["OVCACHE_INVENTORY"])
    text = inventory.read_text().replace("[defaults]\n", "[defaults]\n").replace('retain = "latest:1"\n', "")
    inventory.write_text(text + f'ovms_config = "{config}"\novms_path_map = {{ "/models" = "{models}" }}\n')
    dag = load_dag("ovcache_release_warmup", "release_warmup")
    assert run_dag(dag, conf={"model": "mlp", "version": 1}).state == "success"
    second = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert second.state == "success", [(t.task_id, t.map_index, t.state) for t in second.tasks]
    (entry,) = Manifest.load(hosts["h1"]["cache"] / ".ovcache" / "manifest.json").entries.values()
    assert (entry.version, entry.spec["profile"]) == (2, "ovms")  # OVMS serves latest 1: version 1 retired
    assert run_ovms_reproduction(config, "mlp", models / "mlp" / "2" / "model.xml", hosts["h1"]["cache"])


def test_waiting_for_the_server_is_an_optional_step_after_verify(example_dags: Path, fleet, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Off by default (the step order stays as it was); on, it sits between verify and invalidate."""
    fleet(["h1"])
    off = load_dag("ovcache_release_warmup", "release_warmup")
    assert "on_host.wait_for_served" not in off.task_dict
    assert off.task_dict["on_host.verify"].downstream_task_ids == {"on_host.invalidate"}

    monkeypatch.setenv("OVCACHE_WAIT_FOR_SERVED_SECONDS", "600")
    on = load_dag("ovcache_release_warmup", "release_warmup")
    served = on.task_dict["on_host.wait_for_served"]
    assert served.deferrable and served.timeout == 600
    assert on.task_dict["on_host.verify"].downstream_task_ids == {"on_host.wait_for_served"}
    assert served.downstream_task_ids == {"on_host.invalidate"}


def test_a_release_waits_for_the_server_and_names_the_host_whose_server_never_read_it(  # type: ignore[no-untyped-def]
    example_dags: Path, fleet, monkeypatch
) -> None:
    import threading
    import time

    from tests.core.test_evidence import serve

    hosts = fleet(["h1", "h2"])
    monkeypatch.setenv("OVCACHE_WAIT_FOR_SERVED_SECONDS", "20")
    dag = load_dag("ovcache_release_warmup", "release_warmup")
    h1 = hosts["h1"]

    def server_on_h1() -> None:
        """h1's server restarts once the new version is warmed, and loads it; h2's never does."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if ("mlp", 1) in (_versions(h1["cache"]) if (h1["cache"] / ".ovcache" / "manifest.json").exists() else []):
                serve(h1["models"] / "mlp" / "1" / "model.xml", h1["cache"])
                return
            time.sleep(0.2)

    thread = threading.Thread(target=server_on_h1, daemon=True)
    thread.start()
    result = run_dag(dag, conf={"model": "mlp", "version": 1})
    thread.join(60)
    by_host = {o.xcom["host"]: o.xcom for o in result.mapped("on_host.outcome")}
    assert by_host["h1"]["ok"] is True, by_host["h1"]
    assert by_host["h1"]["wait_for_served"]["devices"] == {"CPU": "served"}
    assert by_host["h2"]["ok"] is False and by_host["h2"]["failed_step"] == "wait_for_served"
    assert "not served yet" in by_host["h2"]["reason"], by_host["h2"]["reason"]
    assert result.state == "failed"
