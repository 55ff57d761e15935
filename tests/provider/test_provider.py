"""Registration with Airflow, and what importing the provider costs a DAG file."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ovcache.get_provider_info import CONN_FIELDS, get_provider_info
from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]


def test_provider_info_matches_airflows_schema() -> None:
    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-ovcache"


def test_every_listed_module_and_class_imports() -> None:
    from airflow._shared.module_loading import import_string

    info = get_provider_info()
    modules = [m for key in ("hooks", "operators", "sensors", "triggers") for entry in info[key] for m in entry["python-modules"]]
    for module in modules:
        __import__(module)
    (conn,) = info["connection-types"]
    hook = import_string(conn["hook-class-name"])
    assert hook.conn_type == conn["connection-type"] == "ovcache"
    for uri in info["asset-uris"]:
        assert callable(import_string(uri["handler"]))


def test_connection_form_fields_are_what_the_hook_reads(airflow_db: Path) -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-ovcache" in manager.providers
    widgets = manager.connection_form_widgets
    for field in ("cache_dir", "repository", "devices", "transport", "ssh_conn_id", "agent_command", "command_timeout"):
        assert f"extra__ovcache__{field}" in widgets, field
    assert widgets["extra__ovcache__transport"].field["schema"]["enum"] == ["local", "ssh"]
    behaviour = manager.field_behaviours["ovcache"]
    assert {"login", "password", "port", "schema"} <= set(behaviour["hidden_fields"])
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    hook_info = ProvidersManagerTaskRuntime().hooks["ovcache"]
    assert hook_info is not None and hook_info.hook_class_name == "airflow_ovcache.hooks.ovcache.OvcacheHook"

    # The form stores prefixed keys; the hook reads them like the bare ones.
    from airflow.sdk import Connection

    from airflow_ovcache.hooks.config import HostConfig

    conn = Connection(
        conn_id="form",
        conn_type="ovcache",
        host="infer-11",
        extra=json.dumps(
            {
                f"extra__ovcache__{k}": v
                for k, v in {"cache_dir": "/c", "devices": "CPU, GPU", "transport": "ssh", "ssh_conn_id": "s"}.items()
            }
        ),
    )
    cfg = HostConfig.from_connection(conn)
    assert (cfg.cache_dir, cfg.devices, cfg.transport, cfg.ssh_conn_id, cfg.agent_command) == (
        "/c",
        ("CPU", "GPU"),
        "ssh",
        "s",
        ("ovcache",),
    )
    assert set(CONN_FIELDS) <= {f.name for f in dataclasses.fields(HostConfig)}


def test_airflow_cli_lists_the_provider(airflow_db: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    listed = {p["package_name"]: p for p in json.loads(out.stdout[out.stdout.index("[") :])}
    assert listed["airflow-ovcache"]["version"] == "0.1.0"


def test_importing_the_provider_imports_neither_openvino_nor_paramiko() -> None:
    code = (
        "import sys\n"
        "import airflow_ovcache.hooks.ovcache, airflow_ovcache.operators.warm, airflow_ovcache.operators.verify\n"
        "import airflow_ovcache.operators.invalidate, airflow_ovcache.sensors.blob, airflow_ovcache.sensors.device\n"
        "import airflow_ovcache.sensors.model_version, airflow_ovcache.triggers.new_version, airflow_ovcache.assets\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('openvino', 'paramiko', 'asyncssh', 'numpy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_ruff_airflow_rules_are_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    require(ruff.exists(), "ruff is not installed in this environment")
    paths = [str(REPO / "airflow_ovcache"), str(REPO / "tests" / "provider")]
    out = subprocess.run([str(ruff), "check", "--select", "AIR", "--preview", *paths], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("ovmodel://models-prod/resnet50", True),
        ("ovmodel://models-prod/resnet50/", True),
        ("ovmodel://models-prod/a/b", False),
        ("ovmodel://models-prod/", False),
        ("ovmodel:///resnet50", False),
        ("ovcache://infer-03/resnet50", True),
        ("ovcache://infer-03/resnet50?x=1", False),
    ],
)
def test_asset_uris_are_checked(airflow_db: Path, uri: str, ok: bool) -> None:
    from airflow.sdk import Asset

    if ok:
        assert Asset(uri=uri).uri == uri.rstrip("/")
    else:
        with pytest.raises(ValueError):
            Asset(uri=uri)
