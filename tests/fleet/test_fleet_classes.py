"""Compile once per hardware class on a real two-class fleet: namespace hosts, two OpenVINO runtimes.

Four namespaced hosts reached over SSH; h1 and h2 run the agent with this environment's OpenVINO,
h3 and h4 with another release installed in an environment of its own (``tests/infra/runtime.py``),
so their class keys differ for the reason they differ on a real fleet: another runtime build. All
four read one model repository path (as an NFS mount would give them) and reach one directory store.

The release DAG (dag.test(), real provider hook and SSH transport) must compile exactly once per
class, install on every other host of the class, and each host's own serving compile, inside its
namespace and with its own runtime, must load from its cache.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_ovcache.samples import build_ir
from tests.dags.conftest import example_dags  # noqa: F401 - fixture
from tests.infra.fleet import Fleet, Host
from tests.infra.runtime import SECOND_OPENVINO, agent_command
from tests.provider.conftest import load_dag, run_dag

pytestmark = [pytest.mark.root, pytest.mark.slow]

SERVE = """
import sys, openvino as ov
cm = ov.Core().compile_model(sys.argv[1], "CPU", {"CACHE_DIR": sys.argv[2], "PERFORMANCE_HINT": "LATENCY"})
print(ov.get_version(), bool(cm.get_property("LOADED_FROM_CACHE")))
"""


def _release_inventory(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *defaults: str, store: Callable[[Host], Path] | None = None
) -> None:
    """A TOML inventory of the fleet's hosts with these ``[defaults]`` lines (and a store per host), and the DAG's settings."""
    lines = ["[defaults]", 'devices = ["CPU"]', 'retain = "latest:1"', 'properties = { PERFORMANCE_HINT = "LATENCY" }', *defaults]
    for host in fleet:
        lines += ["", "[[hosts]]", f'name = "{host.name}"', f'conn_id = "{host.conn_id}"', f'cache_dir = "{host.cache_dir}"']
        if store is not None:
            lines.append(f'store = "{store(host)}"')
    inventory = tmp_path / "fleet.toml"
    inventory.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("OVCACHE_INVENTORY", str(inventory))
    monkeypatch.setenv("OVCACHE_RELEASE_MODELS", "mlp")
    monkeypatch.setenv("OVCACHE_WAIT_FOR_VERSION_SECONDS", "10")
    monkeypatch.setenv("OVCACHE_REPORT_DIR", str(tmp_path / "reports"))


def _serve(host: Host, python: Path, model: Path) -> tuple[str, bool]:
    proc = host.run([str(python), "-c", SERVE, str(model), str(host.cache_dir)], check=True, timeout=180)
    version, loaded = proc.stdout.strip().splitlines()[-1].rsplit(" ", 1)
    return version, loaded == "True"


def test_a_release_compiles_once_per_runtime_class_and_every_host_loads_from_its_own_cache(
    example_dags: Path,  # noqa: F811
    make_fleet: Callable[..., Fleet],
    second_python: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet = make_fleet(4)
    h1, h2, h3, h4 = fleet
    pythons = {h1.name: Path(sys.executable), h2.name: Path(sys.executable), h3.name: second_python, h4.name: second_python}
    for host in (h3, h4):
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{host.conn_id.upper()}", json.dumps(host.ovcache_conn(agent_command=agent_command(second_python)))
        )
    repository = tmp_path / "shared-models"
    model = build_ir(repository / "mlp" / "1" / "model.xml", size_mb=2.0, seed=7)
    store = tmp_path / "store"
    store.mkdir()
    _release_inventory(fleet, tmp_path, monkeypatch, f'repository = "{repository}"', f'store = "{store}"')

    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 1})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    # Two classes, told apart by the runtime each host's agent reported.
    groups = result.task("plan").xcom["classes"]
    assert sorted((g["builder"], tuple(g["installers"])) for g in groups) == [("h1", ("h2",)), ("h3", ("h4",))]
    assert len({g["class"] for g in groups}) == 2
    # Exactly one compile per class; every other host installed what its class's builder put.
    compiled = {t.xcom["host"]: [i["status"] for i in t.xcom["items"]] for t in result.mapped("on_builder.warm")}
    installed = {t.xcom["host"]: [i["status"] for i in t.xcom["items"]] for t in result.mapped("on_installer.warm")}
    assert compiled == {"h1": ["warmed"], "h3": ["warmed"]}, compiled
    assert installed == {"h2": ["installed"], "h4": ["installed"]}, installed
    for task in result.mapped("on_builder.warm"):
        assert [i["status"] for i in task.xcom["store_put"]["items"]] == ["stored"]
    # The same model at the same path compiles to other bytes under the other runtime.
    blobs = {h.name: sorted(p.name for p in h.blobs()) for h in fleet}
    assert blobs["h1"] == blobs["h2"] and blobs["h3"] == blobs["h4"]
    sets = sorted(p.relative_to(store / "sets").as_posix() for p in (store / "sets").rglob("*.json"))
    assert len(sets) == 2, sets

    # What the server on each host loads, with its own runtime, inside its own namespace.
    for host in fleet:
        version, loaded = _serve(host, pythons[host.name], model)
        assert loaded, f"{host.name} ({version}) did not load from its cache"
    assert _serve(h3, second_python, model)[0].startswith(SECOND_OPENVINO)


def test_stores_kept_on_each_host_are_relayed_over_sftp_on_the_hosts_own_ssh_connections(
    example_dags: Path,  # noqa: F811
    make_fleet: Callable[..., Fleet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No shared mount: each host has its own store folder; the worker copies the builder's set into the others'."""
    fleet = make_fleet(3)
    repository = tmp_path / "shared-models"
    model = build_ir(repository / "mlp" / "1" / "model.xml", size_mb=2.0, seed=8)
    for host in fleet:
        (host.root / "store").mkdir(parents=True)
    _release_inventory(
        fleet, tmp_path, monkeypatch, f'repository = "{repository}"', "store_relay = true", store=lambda h: h.root / "store"
    )

    result = run_dag(load_dag("ovcache_release_warmup", "release_warmup"), conf={"model": "mlp", "version": 1})
    assert result.state == "success", [(t.task_id, t.map_index, t.state) for t in result.tasks if t.state != "success"]

    compiled = {t.xcom["host"]: [i["status"] for i in t.xcom["items"]] for t in result.mapped("on_builder.warm")}
    assert compiled == {"h1": ["warmed"]}
    for task in result.mapped("on_installer.warm"):
        assert [i["status"] for i in task.xcom["items"]] == ["installed"], task.xcom
        relayed = task.xcom["relayed"]
        assert relayed["from"] == "h1" and len(relayed["objects"]) == 1 and not relayed["problems"], relayed
        (name,) = relayed["objects"]
        host = fleet[task.xcom["host"]]
        copied = host.root / "store" / "objects" / name[:2] / f"{name}.set"
        original = fleet["h1"].root / "store" / "objects" / name[:2] / f"{name}.set"
        assert copied.read_bytes() == original.read_bytes()
    for host in fleet:
        assert _serve(host, Path(sys.executable), model)[1], f"{host.name} did not load from its cache"
