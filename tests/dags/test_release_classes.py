"""The release DAG compiles once per hardware class under dag.test(): one builder puts, the others install.

Real agents on local hosts: each host its own cache, the hosts of a class one shared model repository
(by-path blob names hash the model's path, so hosts share blobs only where it is the same) and one
directory store. Every host of this machine has the same class, so a class here is "the hosts that
share a store", and a second store makes a second class.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.fleet.classes import HostClass, class_lines, class_of, plan_classes, probe_classes
from airflow_ovcache.fleet.inventory import parse_fleet
from airflow_ovcache.fleet.runs import release_summary
from tests.provider.conftest import DagResult, load_dag, run_dag


def _inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hosts: list[dict[str, str]]) -> None:
    lines = ["[defaults]", 'conn_id = "ovcache_local"', 'retain = "latest:1"', ""]
    for host in hosts:
        lines += ["[[hosts]]", *(f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {str(v).lower()}" for k, v in host.items())]
        lines.append("")
    inventory = tmp_path / "fleet.toml"
    inventory.write_text("\n".join(lines))
    monkeypatch.setenv("OVCACHE_INVENTORY", str(inventory))
    monkeypatch.setenv("OVCACHE_RELEASE_MODELS", "mlp")
    monkeypatch.setenv("OVCACHE_WAIT_FOR_VERSION_SECONDS", "5")
    monkeypatch.setenv("OVCACHE_REPORT_DIR", str(tmp_path / "reports"))


def _statuses(result: DagResult, group: str) -> dict[str, list[str]]:
    """Each host's warm-step item statuses in one task group."""
    return {t.xcom["host"]: [i["status"] for i in t.xcom["items"]] for t in result.mapped(f"{group}.warm") if t.xcom}


def _versions(cache: Path) -> list[tuple[str, int]]:
    return sorted((e.model, e.version) for e in Manifest.load(cache / ".ovcache" / "manifest.json").entries.values())


@pytest.fixture
def hosts(tmp_path: Path, repo: Path, ovcache_conn, monkeypatch: pytest.MonkeyPatch) -> Any:  # type: ignore[no-untyped-def]
    ovcache_conn("ovcache_local", transport="local")

    def make(names: list[str], **per_host: dict[str, Any]) -> dict[str, Path]:
        store = tmp_path / "store"
        store.mkdir(exist_ok=True)
        rows, caches = [], {}
        for name in names:
            caches[name] = tmp_path / name / "cache"
            rows.append(
                {
                    "name": name,
                    "cache_dir": str(caches[name]),
                    "repository": str(repo),
                    "store": str(store),
                    **per_host.get(name, {}),
                }
            )
        _inventory(tmp_path, monkeypatch, rows)
        return caches

    return make


def test_a_class_compiles_once_and_every_other_host_installs_and_loads_from_its_own_cache(
    example_dags: Path, hosts: Any, tmp_path: Path, repo: Path
) -> None:
    # h4 keeps its repository at another path: by-path blob names differ, so it must compile for itself.
    other = tmp_path / "h4-models"
    shutil.copytree(repo, other)
    caches = hosts(["h1", "h2", "h3", "h4"], h3={"builder": True}, h4={"repository": str(other)})
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    # One compile for the class, on the builder the inventory named; the others installed or fell back.
    assert _statuses(result, "on_builder") == {"h3": ["warmed"]}
    installers = {t.xcom["host"]: t.xcom for t in result.mapped("on_installer.warm")}
    assert {h: [i["status"] for i in x["items"]] for h, x in installers.items()} == {
        "h1": ["installed"],
        "h2": ["installed"],
        "h4": ["warmed"],
    }
    (h4_item,) = installers["h4"]["items"]
    assert h4_item["fallback"].startswith("host h4, model mlp, version 2, device CPU, class cpu-")
    assert "keep the repository at one path on every host" in h4_item["fallback"]
    builder = result.mapped("on_builder.warm")[0].xcom
    assert builder["role"] == "builder" and [i["status"] for i in builder["store_put"]["items"]] == ["stored"]
    assert not [t for t in result.tasks if t.task_id.startswith("on_host.") and t.map_index >= 0]

    # Each host proved its own cache: the verify step's load check loads from cache in a fresh process.
    for task in result.mapped("on_installer.verify") + result.mapped("on_builder.verify"):
        assert task.xcom["summary"] == {"ok": 1}, task.xcom
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])
    blobs = {h: sorted(p.name for p in c.glob("*.blob")) for h, c in caches.items()}
    assert blobs["h1"] == blobs["h2"] == blobs["h3"] != blobs["h4"]

    outcomes = result.task("summary").xcom["outcomes"]
    assert sorted(o["host"] for o in outcomes) == ["h1", "h2", "h3", "h4"] and all(o["ok"] for o in outcomes)
    text, failures = release_summary(outcomes, _plan_classes(result))
    assert not failures
    (class_line,) = [line for line in text.splitlines() if line.startswith("class ")]
    assert "compiled on h3 (1 item(s)" in class_line
    assert "installed on h1, h2" in class_line and "compiled after a fallback on h4" in class_line
    assert "2 compile(s) saved" in class_line
    (h1_line,) = [line for line in text.splitlines() if line.startswith("host h1")]
    assert "installed 1 from the store, compiled 0 here" in h1_line


def _plan_classes(result: DagResult) -> list[dict[str, Any]]:
    return result.task("plan").xcom["classes"]


def test_a_failed_builder_leaves_its_class_to_compile_and_only_the_builder_fails(
    example_dags: Path, hosts: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "h1" / "cache"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a directory")
    caches = hosts(["h1", "h2", "h3"])
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 1})

    assert result.state == "failed" and result.task("summary").state == "failed"
    outcomes = {o.xcom["host"]: o.xcom for o in result.mapped("on_builder.outcome") + result.mapped("on_installer.outcome")}
    assert outcomes["h1"]["ok"] is False and outcomes["h1"]["failed_step"] == "warm"
    assert outcomes["h2"]["ok"] is outcomes["h3"]["ok"] is True
    for name in ("h2", "h3"):
        (item,) = outcomes[name]["warm"]["items"]
        assert item["status"] == "warmed" and "has no set" in item["fallback"], item
        assert _versions(caches[name]) == [("mlp", 1)]
    assert broken.read_text() == "not a directory"


def test_an_unreachable_store_costs_the_savings_not_the_release(example_dags: Path, hosts: Any, tmp_path: Path) -> None:
    """The store's mount is gone: the builder's put is a warning, the installers compile, every host is released."""
    caches = hosts(["h1", "h2"])
    (tmp_path / "store").rmdir()
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 1})

    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]
    builder = result.mapped("on_builder.warm")[0].xcom
    assert builder["store_put"]["items"] == [] and "store" in builder["store_put"]["problems"][0]
    (installer,) = [t.xcom for t in result.mapped("on_installer.warm")]
    (item,) = installer["items"]
    assert (installer["role"], item["status"]) == ("installer", "warmed")
    assert item["fallback"].startswith("host h2") and "compiled here instead" in item["fallback"]
    assert {h: _versions(c) for h, c in caches.items()} == {"h1": [("mlp", 1)], "h2": [("mlp", 1)]}
    text, failures = release_summary(result.task("summary").xcom["outcomes"], _plan_classes(result))
    assert not failures
    (class_line,) = [line for line in text.splitlines() if line.startswith("class ")]
    assert "compiled after a fallback on h2" in class_line and "0 compile(s) saved" in class_line
    (h1_line,) = [line for line in text.splitlines() if line.startswith("host h1")]
    assert "stored 0 in the store (not stored: " in h1_line


def test_lean_installers_install_in_one_agent_run_after_their_builder(example_dags: Path, hosts: Any) -> None:
    """Lean hosts with a store: the class's builder is released step by step, the others in two task instances each."""
    caches = hosts(["h1", "h2", "h3"], h1={"lean": True}, h2={"lean": True})
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    assert _statuses(result, "on_builder") == {"h1": ["warmed"]}  # lean, but its class's builder
    assert _statuses(result, "on_installer") == {"h3": ["installed"]}
    (release,) = result.mapped("on_lean_installer.release")
    assert release.label == "h2 · mlp v2"
    warm = release.xcom["steps"]["warm"]
    assert warm["status"] == "ok", warm
    assert [i["status"] for i in warm["result"]["items"]] == ["installed"] and warm["result"]["role"] == "installer"
    per_host = [t.label.split(" · ")[0] for t in result.tasks if t.map_index >= 0 and t.label]
    assert per_host.count("h2") == 2
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])
    text, failures = release_summary(result.task("summary").xcom["outcomes"], _plan_classes(result))
    assert not failures
    (h2_line,) = [line for line in text.splitlines() if line.startswith("host h2")]
    assert "installed 1 from the store" in h2_line and "[one agent run: " in h2_line
    (class_line,) = [line for line in text.splitlines() if line.startswith("class ")]
    assert "installed on h2, h3" in class_line and "2 compile(s) saved" in class_line


def test_stores_kept_on_each_host_are_relayed_from_the_builder_through_the_worker(
    example_dags: Path, hosts: Any, tmp_path: Path
) -> None:
    """``store_relay``: each host has its own store; the class's sets move from the builder's into each installer's."""
    stores = {name: tmp_path / name / "store" for name in ("h1", "h2", "h3", "h4")}
    for name in ("h1", "h2", "h3"):
        stores[name].mkdir(parents=True)
    per_host = {name: {"store": str(path), "store_relay": True} for name, path in stores.items()}
    per_host["h3"]["lean"] = True
    caches = hosts(["h1", "h2", "h3", "h4"], **per_host)  # h4's store folder does not exist
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    (group,) = result.task("plan").xcom["classes"]
    assert (group["builder"], group["installers"], group["store"]) == ("h1", ["h2", "h3", "h4"], "relayed between hosts")
    installers = {t.xcom["host"]: t.xcom for t in result.mapped("on_installer.warm")}
    assert [i["status"] for i in installers["h2"]["items"]] == ["installed"]
    relayed = installers["h2"]["relayed"]
    assert relayed["from"] == "h1" and len(relayed["sets"]) == 1 and len(relayed["objects"]) == 1 and not relayed["problems"]
    (obj,) = relayed["objects"]
    assert (stores["h2"] / "objects" / obj[:2] / f"{obj}.set").stat().st_size == relayed["bytes"] - _ref_bytes(stores["h2"])
    assert not list((stores["h2"] / "tmp").iterdir())  # every temp name was renamed into place
    (lean,) = result.mapped("on_lean_installer.release")
    assert [i["status"] for i in lean.xcom["steps"]["warm"]["result"]["items"]] == ["installed"]
    assert lean.xcom["relayed"]["objects"] == [obj]
    # h4: no store folder: the relay is a warning, the install cannot reach its store, the host compiles.
    (h4_item,) = installers["h4"]["items"]
    assert h4_item["status"] == "warmed" and "compiled here instead" in h4_item["fallback"]
    assert "does not exist on the installing host" in installers["h4"]["relayed"]["problems"][0]
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])


def test_stores_kept_on_each_host_are_filled_through_a_hub_in_object_storage(
    example_dags: Path, hosts: Any, tmp_path: Path, s3_standin: Any
) -> None:
    """``store_hub``: the builder's task copies its set up to an S3 hub after its put; each installer's copies it down.

    The hub is an S3 bucket on moto's S3 API server (the stand-in: no object store runs here),
    reached as a user's would be: ``s3://`` through Airflow's Amazon provider and an ``aws``
    connection (``store_hub_conn_id``).
    """
    stores = {name: tmp_path / name / "store" for name in ("h1", "h2", "h3")}
    for path in stores.values():
        path.mkdir(parents=True)
    hub = f"s3://{s3_standin.bucket}/fleet"
    per_host = {
        name: {"store": str(path), "store_hub": hub, "store_hub_conn_id": s3_standin.conn_id} for name, path in stores.items()
    }
    per_host["h3"]["lean"] = True
    caches = hosts(["h1", "h2", "h3"], **per_host)  # retain latest:1
    dag = load_dag("ovcache_release_warmup", "release_warmup")
    first = run_dag(dag, conf={"model": "mlp", "version": 1})
    assert first.state == "success", [(t.task_id, t.map_index, t.state) for t in first.tasks if t.state != "success"]
    (old,) = first.mapped("on_builder.warm")[0].xcom["relayed"]["objects"]
    result = run_dag(dag, conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    (group,) = result.task("plan").xcom["classes"]
    assert (group["builder"], group["installers"], group["store"]) == ("h1", ["h2", "h3"], f"hub {hub}")
    (builder,) = [t.xcom for t in result.mapped("on_builder.warm")]
    up = builder["relayed"]
    assert up["to"] == hub and len(up["sets"]) == 1 and not up["problems"], up
    # The builder pruned the hub by its retain: version 1's set is gone; its object is younger than an hour and stays.
    _, _, spec_id, class_key = up["sets"][0].split("/")
    assert up["pruned"] == {"sets": [f"mlp/1/{spec_id}/{class_key}"], "objects": [], "kept": [2], "problems": []}
    assert [k for k in s3_standin.objects("fleet/sets/") if "/mlp/1/" in k] == []
    assert f"fleet/objects/{old[:2]}/{old}.set" in s3_standin.objects("fleet/objects/")
    text, _ = release_summary(result.task("summary").xcom["outcomes"], _plan_classes(result))
    (class_line,) = [line for line in text.splitlines() if line.startswith("class ")]
    assert f"(store hub {hub}): compiled on h1" in class_line and "installed on h2, h3" in class_line, class_line
    assert "1 old set(s) pruned from the hub" in class_line, class_line
    (obj,) = up["objects"]
    built = (stores["h1"] / "objects" / obj[:2] / f"{obj}.set").read_bytes()
    in_hub = s3_standin.objects("fleet/")
    assert in_hub[f"fleet/objects/{obj[:2]}/{obj}.set"] == built
    assert not [key for key in in_hub if key.startswith("fleet/tmp/")]  # every temp object was moved to its name
    (h2,) = [t.xcom for t in result.mapped("on_installer.warm")]
    assert [i["status"] for i in h2["items"]] == ["installed"]
    assert h2["relayed"]["from"] == hub and h2["relayed"]["objects"] == [obj] and not h2["relayed"]["problems"]
    (lean,) = result.mapped("on_lean_installer.release")
    assert [i["status"] for i in lean.xcom["steps"]["warm"]["result"]["items"]] == ["installed"]
    assert lean.xcom["relayed"]["objects"] == [obj]
    for name in ("h2", "h3"):
        assert (stores[name] / "objects" / obj[:2] / f"{obj}.set").read_bytes() == built
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])


def test_a_hub_that_cannot_be_reached_costs_the_savings_not_the_release(
    example_dags: Path, hosts: Any, tmp_path: Path, s3_standin: Any
) -> None:
    """Two hubs that fail: a scheme no filesystem serves, and an S3 bucket that does not exist (never created).

    Each builder's copy up and each installer's copy down is one warning naming the host and the hub
    and what to do; the installers compile; every host ends with the release in its cache.
    """
    stores = {name: tmp_path / name / "store" for name in ("h1", "h2", "h3", "h4")}
    for path in stores.values():
        path.mkdir(parents=True)
    hubs = {"h1": "nosuchscheme://bucket/ovcache", "h3": "s3://ovcache-hbu/fleet"}  # the second: a typo of the bucket
    per_host = {
        name: {"store": str(stores[name]), "store_hub": hubs[builder], "store_hub_conn_id": s3_standin.conn_id}
        for name, builder in (("h1", "h1"), ("h2", "h1"), ("h3", "h3"), ("h4", "h3"))
    }
    caches = hosts(["h1", "h2", "h3", "h4"], **per_host)
    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    builders = {t.xcom["host"]: t.xcom for t in result.mapped("on_builder.warm")}
    installers = {t.xcom["host"]: t.xcom for t in result.mapped("on_installer.warm")}
    assert sorted(builders) == ["h1", "h3"] and sorted(installers) == ["h2", "h4"]
    (up,) = builders["h1"]["relayed"]["problems"]
    assert up.startswith("host h1: relaying its sets up to hub nosuchscheme://bucket/ovcache failed"), up
    assert "no filesystem for this scheme is installed where the task runs" in up and "this host's cache is warm" in up
    (down,) = installers["h2"]["relayed"]["problems"]
    assert down.startswith("host h2: relaying from hub nosuchscheme://bucket/ovcache failed") and "compiles instead" in down
    (typo_up,) = builders["h3"]["relayed"]["problems"]
    assert "hub s3://ovcache-hbu/fleet: bucket ovcache-hbu does not exist (create it, or fix store_hub)" in typo_up, typo_up
    (typo_down,) = installers["h4"]["relayed"]["problems"]
    assert typo_down.startswith("host h4: relaying from hub s3://ovcache-hbu/fleet failed"), typo_down
    assert s3_standin.buckets() == [s3_standin.bucket]  # the mistyped bucket was not created
    text, _ = release_summary(result.task("summary").xcom["outcomes"], _plan_classes(result))
    for line in [line for line in text.splitlines() if line.startswith("class ")]:
        assert "the copy up to the hub failed (see h1's warm log)" in line or "(see h3's warm log)" in line, line
    for name in ("h2", "h4"):
        (item,) = installers[name]["items"]
        assert item["status"] == "warmed" and item["fallback"], item
    for name in ("h1", "h3"):  # each builder's own store keeps its set
        assert [i["status"] for i in builders[name]["store_put"]["items"]] == ["stored"]
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])


def _ref_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "sets").rglob("*.json"))


def test_a_builder_killed_mid_compile_leaves_its_class_to_compile_and_loses_nothing(
    example_dags: Path, hosts: Any, tmp_path: Path, repo: Path, ovcache_conn: Any
) -> None:
    """The builder's agent is SIGKILLed while it compiles v2: its v1 stays, nothing of v2 is stored, the others compile."""

    from airflow_ovcache.samples import build_transformer

    caches = hosts(["h1", "h2", "h3"])
    run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 1})
    before = {p.name: p.read_bytes() for p in caches["h1"].glob("*.blob")}
    # A model that compiles for seconds, as v2, so there is a compile to die in.
    mlp2 = repo / "mlp" / "2"
    for old in mlp2.iterdir():
        old.unlink()
    build_transformer(mlp2 / "model.xml", layers=60, width=128, seq=64, seed=5)  # a 2 s compile here
    staging = caches["h1"] / ".ovcache" / "staging"
    wrapper = tmp_path / "dies-while-warming.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" warm "*) ;; *) exec "$@" ;; esac\n'
        '"$@" & agent=$!\n'
        # Once the warm has made its private staging folder, it is compiling: kill it there.
        f'for _ in $(seq 600); do [ -n "$(ls -A {staging} 2>/dev/null)" ] && break; sleep 0.05; done\n'
        "sleep 0.5; kill -KILL $agent; wait $agent\n"
    )
    ovcache_conn("ovcache_dies", transport="local", agent_command=f"sh {wrapper} {sys.executable} -m airflow_ovcache.cli.main")
    inventory = Path(os.environ["OVCACHE_INVENTORY"])
    inventory.write_text(inventory.read_text().replace('name = "h1"\n', 'name = "h1"\nconn_id = "ovcache_dies"\n'))

    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "failed"
    outcomes = {o.xcom["host"]: o.xcom for o in result.mapped("on_builder.outcome") + result.mapped("on_installer.outcome")}
    assert (outcomes["h1"]["ok"], outcomes["h1"]["failed_step"]) == (False, "warm")
    assert "signal" in outcomes["h1"]["reason"] or "killed" in outcomes["h1"]["reason"], outcomes["h1"]["reason"]
    for name in ("h2", "h3"):
        (item,) = outcomes[name]["warm"]["items"]
        assert item["status"] == "warmed" and "has no set" in item["fallback"], item
    # Nothing of v2 was stored, and the builder's v1 is whole (invalidation never ran there).
    assert not list((tmp_path / "store" / "sets" / "mlp" / "2").rglob("*.json"))
    assert not list((tmp_path / "store" / "tmp").iterdir())
    assert _versions(caches["h1"]) == [("mlp", 1)]
    assert {p.name: p.read_bytes() for p in caches["h1"].glob("*.blob")} == before


# What a host's serving process runs: the spec the release warms here (by path, no properties), with its own runtime.
SERVE = """
import sys, openvino as ov
cm = ov.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2]})
print(ov.get_version(), bool(cm.get_property("LOADED_FROM_CACHE")))
"""


def test_a_host_upgraded_between_plan_and_install_compiles_for_its_new_class_and_loses_nothing(
    example_dags: Path, hosts: Any, tmp_path: Path, repo: Path, ovcache_conn: Any, second_python: Path
) -> None:
    """h3 tells the plan one class and is another by the time it installs: its runtime was upgraded in between.

    h3's agent is a wrapper: until the plan has asked h3's class (its first ``ovcache devices``), it runs the
    agent with this environment's OpenVINO; from then on, for every later step (wait, devices check, install,
    verify, invalidate), with OpenVINO 2026.3.0 from an environment of its own, as if the host's runtime had been
    upgraded right after it answered. h3 already serves v1, compiled by its old runtime, so the plan read its
    class from host facts that the upgrade makes stale. The plan puts h3 in h1's class; the install must find
    no set for h3's class now, compile for itself (not install the set of its old class), and say so.
    """
    from airflow_ovcache.core.blobfile import read_header
    from airflow_ovcache.core.blobstore import DirectoryStore
    from tests.conftest import ovcache
    from tests.infra.runtime import SECOND_OPENVINO, agent_command

    caches = hosts(["h1", "h2", "h3"], h3={"conn_id": "ovcache_upgraded"})
    h3_cache = str(caches["h3"])
    old = ovcache("warm", "--repository", str(repo), "--cache-dir", h3_cache, "--model", "mlp", "--versions", "specific:1", "-q")
    assert old.returncode == 0, old.stderr
    upgraded = tmp_path / "h3-upgraded"
    wrapper = tmp_path / "h3-agent.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'if [ -e {shlex.quote(str(upgraded))} ]; then exec {agent_command(second_python)} "$@"; fi\n'
        f'if [ "$1" = devices ]; then : > {shlex.quote(str(upgraded))}; fi\n'
        f'exec {shlex.quote(sys.executable)} -m airflow_ovcache.cli.main "$@"\n'
    )
    ovcache_conn("ovcache_upgraded", transport="local", agent_command=f"sh {wrapper}")

    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 2})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    # The plan saw one class: h1 builds, h2 and h3 install.
    (group,) = _plan_classes(result)
    assert (group["builder"], group["installers"]) == ("h1", ["h2", "h3"])
    planned = group["class"]
    assert _statuses(result, "on_builder") == {"h1": ["warmed"]}
    installers = {t.xcom["host"]: t.xcom for t in result.mapped("on_installer.warm")}
    assert {h: [i["status"] for i in x["items"]] for h, x in installers.items()} == {"h2": ["installed"], "h3": ["warmed"]}
    # h3 looked under the class it is now, found only the planned class's set, and compiled once, here.
    (h3_item,) = installers["h3"]["items"]
    now = h3_item["class_key"]
    assert now and now != planned, h3_item
    fallback = h3_item["fallback"]
    assert "\n" not in fallback
    head = f"host h3, model mlp, version 2, device CPU, class {now}: not installed from the store: "
    assert fallback.startswith(head), fallback
    assert fallback.endswith(f"has no set for this spec and class (it holds class {planned})"), fallback
    assert h3_item["compile_seconds"] and h3_item["loaded_from_cache"] is True
    (h3_entry,) = Manifest.load(caches["h3"] / ".ovcache" / "manifest.json").entries.values()
    assert (h3_entry.version, h3_entry.runtime_dist) == (2, SECOND_OPENVINO)
    (h3_blob,) = caches["h3"].glob("*.blob")
    (h1_blob,) = caches["h1"].glob("*.blob")
    assert read_header(h3_blob).runtime_version.startswith(SECOND_OPENVINO)
    assert read_header(h3_blob).runtime_version != read_header(h1_blob).runtime_version  # not the other class's set

    for task in result.mapped("on_installer.verify") + result.mapped("on_builder.verify"):
        assert task.xcom["summary"] == {"ok": 1}, task.xcom
    outcomes = result.task("summary").xcom["outcomes"]
    assert sorted(o["host"] for o in outcomes) == ["h1", "h2", "h3"] and all(o["ok"] for o in outcomes)
    text, failures = release_summary(outcomes, _plan_classes(result))
    assert not failures
    (class_line,) = [line for line in text.splitlines() if line.startswith("class ")]
    assert "compiled on h1 (1 item(s)" in class_line and "installed on h2;" in class_line, class_line
    moved = f"compiled after a fallback on h3 (h3 is class {now} now: its class changed after the plan)"
    assert moved in class_line and "1 compile(s) saved" in class_line, class_line
    (h3_line,) = [line for line in text.splitlines() if line.startswith("host h3")]
    assert "installed 0 from the store, compiled 1 here" in h3_line and f"fell back: {fallback}" in h3_line, h3_line

    # Nothing of the store or the builder's cache was lost: the one set is whole and holds the builder's blob.
    store = DirectoryStore(tmp_path / "store")
    (kept,) = store.list("mlp")
    assert (kept.key.version, kept.key.class_key) == (2, planned)
    fetched = tmp_path / "fetched"
    fetched.mkdir()
    assert store.get(kept.key, fetched) is not None  # re-hashes the object against its name
    builder_blobs = {p.name: p.read_bytes() for p in caches["h1"].glob("*.blob")}
    assert {p.name: p.read_bytes() for p in fetched.iterdir()} == builder_blobs
    assert {p.name: p.read_bytes() for p in caches["h2"].glob("*.blob")} == builder_blobs
    assert not list((tmp_path / "store" / "tmp").iterdir())
    assert {h: _versions(c) for h, c in caches.items()} == dict.fromkeys(caches, [("mlp", 2)])

    # Each host's server, with its own runtime, loads from its cache.
    model = repo / "mlp" / "2" / "model.xml"
    for name, python in (("h1", Path(sys.executable)), ("h2", Path(sys.executable)), ("h3", second_python)):
        proc = subprocess.run(
            [str(python), "-c", SERVE, str(model), str(caches[name])], capture_output=True, text=True, timeout=180, check=True
        )
        version, loaded = proc.stdout.split()[-2:]
        assert loaded == "True", f"{name} ({version}) did not load from its cache"
        assert version.startswith(SECOND_OPENVINO) is (name == "h3"), (name, version)


# -- planning, without Airflow -------------------------------------------------------------------


def _fleet(hosts: list[dict[str, Any]], **defaults: Any) -> Any:
    return parse_fleet({"defaults": {"cache_dir": "/c", "repository": "/r", **defaults}, "hosts": hosts})


def test_hosts_are_grouped_by_store_and_class_and_a_marked_builder_is_preferred() -> None:
    fleet = _fleet(
        [
            {"name": "a"},
            {"name": "b", "builder": True},
            {"name": "c"},
            {"name": "d", "store": "/other"},
            {"name": "e", "store": ""},
            {"name": "f"},
        ],
        store="/s",
    )
    classes = {
        "a": HostClass("a", "cpu-1"),
        "b": HostClass("b", "cpu-1"),
        "c": HostClass("c", "cpu-2"),
        "d": HostClass("d", "cpu-1"),
        "f": HostClass("f", None, "ssh: connection refused"),
    }
    plan = plan_classes(fleet.hosts, classes)
    assert [g.to_json() for g in plan.groups] == [
        {"store": "/s", "class": "cpu-1", "builder": "b", "installers": ["a"]},
        {"store": "/s", "class": "cpu-2", "builder": "c", "installers": []},
        {"store": "/other", "class": "cpu-1", "builder": "d", "installers": []},
    ]
    assert [h.name for h in plan.own] == ["e", "f"]  # no store; class not readable
    assert [h.name for h in plan.builders] == ["b", "c", "d"] and [h.name for h in plan.installers] == ["a"]


def test_a_probe_that_fails_names_why_and_an_old_agent_has_no_class() -> None:
    fleet = _fleet([{"name": "a"}, {"name": "b"}, {"name": "c"}], store="/s")

    def probe(host: Any) -> str | None:
        if host.name == "a":
            raise RuntimeError("host a: ssh connection refused\ntraceback...")
        return None if host.name == "b" else "cpu-9"

    found = probe_classes(fleet.hosts, probe)
    assert found["a"] == HostClass("a", None, "host a: ssh connection refused")
    assert found["b"].key is None and "upgrade airflow-ovcache" in found["b"].reason
    assert found["c"] == HostClass("c", "cpu-9")


def test_class_of_joins_each_devices_key_and_needs_all_of_them() -> None:
    class Row:
        def __init__(self, key: str) -> None:
            self.class_key = key

    assert class_of([Row("cpu-1"), Row("gpu-2")]) == "cpu-1+gpu-2"
    assert class_of([Row("cpu-1"), Row("")]) is None
    assert class_of([]) is None


def test_the_class_line_names_an_installer_whose_class_changed_after_the_plan() -> None:
    """A fallback whose install found another class than the plan's is said to be that class now; other fallbacks are not."""

    def installer(host: str, class_key: str | None) -> dict[str, Any]:
        item = {"model": "m", "version": 1, "device": "CPU", "status": "warmed", "class_key": class_key, "fallback": "..."}
        return {"host": host, "ok": True, "warm": {"items": [item]}}

    built = {"model": "m", "version": 1, "device": "CPU", "status": "warmed", "compile_seconds": 1.0}
    outcomes = [{"host": "a", "ok": True, "warm": {"items": [built]}}, installer("b", "cpu-1"), installer("c", "cpu-2")]
    groups = [{"store": "/s", "class": "cpu-1", "builder": "a", "installers": ["b", "c"]}]
    (line,) = class_lines(outcomes, groups)
    assert "compiled after a fallback on b, c (c is class cpu-2 now: its class changed after the plan)" in line, line


def test_store_and_builder_keys_are_checked() -> None:
    with pytest.raises(UsageError, match="host a: store must be an absolute path"):
        _fleet([{"name": "a", "store": "relative"}])
    with pytest.raises(UsageError, match="host a: builder needs a store"):
        _fleet([{"name": "a", "builder": True}])
    with pytest.raises(UsageError, match="host a: store_hub needs a store"):
        _fleet([{"name": "a", "store_hub": "s3://bucket/ovcache"}])
    with pytest.raises(UsageError, match="host a: store_hub must be an object-storage URL such as s3://bucket/ovcache"):
        _fleet([{"name": "a", "store_hub": "/mnt/hub"}], store="/s")
    with pytest.raises(UsageError, match="host a: store_hub_conn_id needs a store_hub"):
        _fleet([{"name": "a", "store_hub_conn_id": "aws_default"}], store="/s")
    hub = _fleet([{"name": "a", "store_hub": "s3://bucket/ovcache", "store_hub_conn_id": "aws_default"}], store="/s")
    assert (hub.hosts[0].store_hub, hub.hosts[0].store_hub_conn_id) == ("s3://bucket/ovcache", "aws_default")
    with pytest.raises(UsageError, match="host a: builder must be true or false"):
        _fleet([{"name": "a", "builder": "yes"}], store="/s")
