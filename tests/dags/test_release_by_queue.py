"""The queue-routed release DAG: its host list, its shape, and runs under dag.test() on two local "hosts".

``dag.test()`` runs every task in this process whatever its queue; that each
host's tasks really run on that host's worker is shown by tests/distributed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.fleet.queues import host_group_id, parse_queue_hosts
from tests.conftest import blobs_in
from tests.provider.conftest import load_dag, run_dag

HOST_STEPS = ["wait_for_version", "check_devices", "warm", "verify", "invalidate"]
DEFAULTS = {"cache_dir": "/var/cache/openvino", "repository": "/models", "devices": ["CPU"], "retain": "latest:2"}


def _versions(cache: Path) -> list[tuple[str, int]]:
    return sorted((e.model, e.version) for e in Manifest.load(cache / ".ovcache" / "manifest.json").entries.values())


# -- the host list read at parse time ------------------------------------------------------------


def test_compact_host_list_takes_missing_parts_from_the_defaults() -> None:
    hosts = parse_queue_hosts("infer-1:/srv/cache:/srv/models, infer-2::/m2 ,infer-3", DEFAULTS)
    assert [(h.name, h.queue, h.cache_dir, h.repository) for h in hosts] == [
        ("infer-1", "infer-1", "/srv/cache", "/srv/models"),
        ("infer-2", "infer-2", "/var/cache/openvino", "/m2"),
        ("infer-3", "infer-3", "/var/cache/openvino", "/models"),
    ]
    assert all(
        h.devices == ("CPU",) and h.retain == "latest:2" and h.conn_id == f"ovcache_{h.name.replace('-', '_')}" for h in hosts
    )
    assert parse_queue_hosts("  ", DEFAULTS) == []
    assert parse_queue_hosts("a,b", {**DEFAULTS, "conn_id": "ovcache_local"})[1].conn_id == "ovcache_local"


def test_json_host_list_is_an_inventory_in_one_line() -> None:
    spec = json.dumps(
        {
            "defaults": {"retain": "latest:1"},
            "hosts": [
                {"name": "gpu-1", "devices": ["CPU", "GPU"], "queue": "gpu-pool-1", "labels": ["gpu"]},
                {"name": "cpu.1", "properties": {"PERFORMANCE_HINT": "LATENCY"}},
            ],
        }
    )
    gpu, cpu = parse_queue_hosts(spec, DEFAULTS)
    assert (gpu.queue, gpu.devices, gpu.retain, gpu.labels) == ("gpu-pool-1", ("CPU", "GPU"), "latest:1", ("gpu",))
    assert (cpu.queue, cpu.properties, host_group_id(cpu.name)) == ("cpu.1", {"PERFORMANCE_HINT": "LATENCY"}, "cpu_1")
    assert [h.name for h in parse_queue_hosts('[{"name": "x"}]', DEFAULTS)] == ["x"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("a,b:relative/cache", "host b: cache_dir must be an absolute path"),
        ('[{"name": "a", "queue": "q"}, {"name": "b", "queue": "q"}]', "hosts share a queue: q (a, b)"),
        ("a.b,a_b", "differ only in characters"),
        ("a,a", "listed twice"),
        ("bad name", "not a plain host name"),
        ('[{"name": "a", "colour": "red"}]', "unknown key(s) colour"),
        ("[oops", "is not valid JSON"),
    ],
)
def test_host_list_mistakes_are_one_line_each(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_queue_hosts(spec, DEFAULTS)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- the DAG -------------------------------------------------------------------------------------


@pytest.fixture
def queue_hosts(tmp_path: Path, repo: Path, ovcache_conn, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Local hosts for the queue DAG: each its own repository copy and cache, listed in $OVCACHE_QUEUE_HOSTS."""
    import shutil

    def make(names: list[str], broken: dict[str, str] | None = None, **env: str) -> dict[str, dict[str, Path]]:
        ovcache_conn("ovcache_local", transport="local")
        settings = {
            "OVCACHE_QUEUE_CONN_ID": "ovcache_local",
            "OVCACHE_QUEUE_RETAIN": "latest:1",
            "OVCACHE_RELEASE_MODELS": "mlp,tiny",
            "OVCACHE_WAIT_FOR_VERSION_SECONDS": "5",
            **env,
        }
        for key, value in settings.items():
            monkeypatch.setenv(key, value)
        hosts, spec = {}, []
        for name in names:
            root = tmp_path / name
            if not (root / "models").exists():
                shutil.copytree(repo, root / "models")
            if (broken or {}).get(name) == "cache-is-a-file":
                (root / "cache").write_text("not a directory")
            hosts[name] = {"models": root / "models", "cache": root / "cache"}
            spec.append(f"{name}:{root / 'cache'}:{root / 'models'}")
        monkeypatch.setenv("OVCACHE_QUEUE_HOSTS", ",".join(spec))
        return hosts

    return make


def _dag() -> Any:
    return load_dag("ovcache_release_by_queue", "release_by_queue")


def test_every_task_that_touches_a_host_goes_to_its_queue(
    example_dags: Path, queue_hosts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_hosts(["infer-1", "infer.2"])
    dag = _dag()
    by_id = {t.task_id: t for t in dag.tasks}
    for host, group in (("infer-1", "infer-1"), ("infer.2", "infer_2")):
        for step in HOST_STEPS:
            assert by_id[f"{group}.{step}"].queue == host, step
        # bookkeeping that never touches the host stays on the default queue, so a host
        # whose worker is down still gets its outcome and the run its summary
        assert by_id[f"{group}.outcome"].queue == by_id["summary"].queue == by_id[f"targets.{group}"].queue == "default"
        assert by_id[f"{group}.warm"].outlets[0].name == "ovcache-host-caches"
        assert (by_id[f"{group}.warm"].confirm, by_id[f"{group}.verify"].load_check) == (True, True)
        assert by_id[f"{group}.invalidate"].upstream_task_ids == {f"{group}.verify", f"targets.{group}"}
    # without triggerer queues the version sensor waits on the host's worker, not in a triggerer elsewhere
    sensor = by_id["infer-1.wait_for_version"]
    assert (sensor.deferrable, sensor.mode) == (False, "reschedule")
    monkeypatch.setenv("AIRFLOW__TRIGGERER__QUEUES_ENABLED", "True")
    assert _dag().task_dict["infer-1.wait_for_version"].deferrable is True
    monkeypatch.setenv("OVCACHE_QUEUE_DEFERRABLE", "false")
    assert _dag().task_dict["infer-1.wait_for_version"].deferrable is False


def test_release_warms_both_hosts_then_retires_the_old_version(example_dags: Path, queue_hosts: Any) -> None:
    hosts = queue_hosts(["infer-1", "infer-2"])
    first = run_dag(_dag(), conf={"model": "mlp", "version": 1})
    assert first.state == "success", [(t.task_id, t.map_index, t.state) for t in first.tasks]

    second = run_dag(_dag(), conf={"model": "mlp", "version": 2})
    assert second.state == "success", [(t.task_id, t.map_index, t.state) for t in second.tasks]
    assert {h: _versions(p["cache"]) for h, p in hosts.items()} == {"infer-1": [("mlp", 2)], "infer-2": [("mlp", 2)]}
    assert all(len(blobs_in(p["cache"])) == 1 for p in hosts.values())
    for host in hosts:
        for step in HOST_STEPS:
            assert [t.state for t in second.mapped(f"{host}.{step}")] == ["success"], (host, step)
        (outcome,) = second.mapped(f"{host}.outcome")
        assert (outcome.xcom["host"], outcome.xcom["queue"], outcome.xcom["ok"]) == (host, host, True)
        assert outcome.xcom["warm"]["items"][0]["loaded_from_cache"] is True
        assert outcome.xcom["verify"]["summary"] == {"ok": 1}
        assert [(r["model"], r["version"], r["reason"]) for r in outcome.xcom["invalidate"]["removals"]] == [
            ("mlp", 1, "retired")
        ]
    assert second.task("summary").xcom["hosts"] == 2


def test_a_failing_host_is_named_and_a_host_left_out_is_not_touched(example_dags: Path, queue_hosts: Any) -> None:
    hosts = queue_hosts(["h1", "h2", "h3"], broken={"h2": "cache-is-a-file"})
    result = run_dag(_dag(), conf={"model": "mlp", "version": 2, "hosts": ["h1", "h2"]})

    assert result.state == "failed"
    assert result.task("summary").state == "failed"
    assert result.task("targets.h3").xcom == []
    assert {t.state for t in result.tasks if t.task_id.startswith("h3.")} == {"skipped"}  # mapped over nothing
    assert not hosts["h3"]["cache"].exists()
    (h1,) = result.mapped("h1.outcome")
    (h2,) = result.mapped("h2.outcome")
    assert h1.xcom["ok"] is True and _versions(hosts["h1"]["cache"]) == [("mlp", 2)]
    assert (h2.xcom["ok"], h2.xcom["failed_step"]) == (False, "warm")
    assert "h2" in h2.xcom["reason"] and "is a file" in h2.xcom["reason"]
    assert hosts["h2"]["cache"].read_text() == "not a directory"


def test_hosts_sharing_a_store_compile_once_and_the_others_install_after_the_builder(
    example_dags: Path, queue_hosts: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """infer-2 is marked builder: it alone compiles; infer-1 (listed first) and infer-3 wait for it and install."""
    hosts = queue_hosts(["infer-1", "infer-2", "infer-3"])
    store = tmp_path / "store"
    store.mkdir()
    # One repository path for all three, as on hosts that each mount /models: a by-path blob records the path.
    models = hosts["infer-1"]["models"]
    spec = [
        {"name": name, "cache_dir": str(paths["cache"]), "repository": str(models), "store": str(store)}
        | ({"builder": True} if name == "infer-2" else {})
        for name, paths in hosts.items()
    ]
    monkeypatch.setenv("OVCACHE_QUEUE_HOSTS", json.dumps(spec))
    dag = _dag()
    share = {"targets.infer-1"}  # every task of the host's mapped group depends on its share of the run
    assert dag.task_dict["infer-1.builders_done"].upstream_task_ids - share == {"infer-2.warm"}
    assert dag.task_dict["infer-1.builders_done"].queue == "default"  # a builder's dead worker never blocks it
    assert dag.task_dict["infer-1.warm"].upstream_task_ids - share == {"infer-1.check_devices", "infer-1.builders_done"}
    assert dag.task_dict["infer-3.builders_done"].upstream_task_ids - {"targets.infer-3"} == {"infer-2.warm"}
    assert "infer-2.builders_done" not in dag.task_dict

    result = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks]
    (built,) = result.mapped("infer-2.warm")
    assert (built.xcom["role"], built.xcom["summary"]["warmed"]) == ("builder", 1)
    assert [i["status"] for i in built.xcom["store_put"]["items"]] == ["stored"]
    for name in ("infer-1", "infer-3"):
        (warm,) = result.mapped(f"{name}.warm")
        (item,) = warm.xcom["items"]
        assert (warm.xcom["role"], item["status"], item["loaded_from_cache"], item.get("fallback")) == (
            "installer",
            "installed",
            True,
            None,
        ), item
        assert _versions(hosts[name]["cache"]) == [("mlp", 2)]
        (outcome,) = result.mapped(f"{name}.outcome")
        assert outcome.xcom["ok"] is True and outcome.xcom["verify"]["summary"] == {"ok": 1}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"store": "/srv/store", "store_relay": True}, "host b: store_relay is not read by the queue-routed release"),
        ({"lean": True}, "host b: lean is not read by the queue-routed release"),
        (
            {"store": "/srv/store", "store_hub": "s3://bucket/ovcache"},
            "host b: store_hub is not read by the queue-routed release",
        ),
    ],
)
def test_keys_only_the_ssh_release_reads_are_refused_in_one_line(extra: dict[str, Any], message: str) -> None:
    from airflow_ovcache.fleet.queues import refuse_unread_keys

    hosts = parse_queue_hosts(json.dumps([{"name": "a"}, {"name": "b", **extra}]), DEFAULTS)
    with pytest.raises(UsageError) as err:
        refuse_unread_keys(hosts)
    assert message in str(err.value) and "ovcache_release_warmup" in str(err.value) and "\n" not in str(err.value)


def test_without_hosts_the_dag_parses_and_its_runs_fail_saying_what_to_set(
    example_dags: Path, queue_hosts: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_hosts([])
    monkeypatch.delenv("OVCACHE_QUEUE_HOSTS")
    dag = _dag()
    assert type(dag.timetable).__name__ == "NullTimetable"  # releases do not start it
    result = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert result.state == "failed"
    assert (result.task("releases").state, result.task("summary").state) == ("failed", "failed")


def test_nightly_by_queue_repairs_on_each_hosts_queue_and_reports(example_dags: Path, queue_hosts: Any) -> None:
    from airflow_ovcache.samples import swap_weights_in_place

    hosts = queue_hosts(["infer-1", "infer-2"])
    assert run_dag(_dag(), conf={"model": "mlp", "version": 2}).state == "success"
    nightly = load_dag("ovcache_nightly_by_queue", "nightly_by_queue")
    assert {t.task_id: t.queue for t in nightly.tasks if t.task_id.endswith(".rewarm")} == {
        "infer-1.rewarm": "infer-1",
        "infer-2.rewarm": "infer-2",
    }
    assert nightly.task_dict["report"].queue == "default"
    swap_weights_in_place(hosts["infer-2"]["models"] / "mlp" / "2" / "model.bin", seed=3)
    result = run_dag(nightly)
    assert result.state == "success", [(t.task_id, t.state) for t in result.tasks]
    report = result.task("report").xcom
    assert report["counts"] == {"ok": 1, "repaired": 1, "unrepaired": 0, "unreachable": 0, "host-error": 0}
    assert "repaired (stale-model)" in Path(report["html"]).read_text()
    stored = json.loads(Path(report["json"]).read_text())
    assert stored["run"]["dag_id"] == "ovcache_nightly_by_queue" and stored["run"]["run_id"] == result.run_id
    assert Path(report["json"]).name.startswith("nightly-by-queue-") and ":" not in Path(report["json"]).name
