"""The edge override (docker/docker-compose.edge.yaml): an edge host that dials out to the API server alone.

Static, like ``test_docker.py``: ``docker-compose config`` merges the override onto
the base file (no engine needed) and the merged model is checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import require

DOCKER = Path(__file__).resolve().parents[2] / "docker"
SECRETS = ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_JWT_SECRET")
CENTRAL = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)


def _config(env_dir: Path, *names: str) -> dict[str, Any]:
    """``docker-compose config`` of the named files of docker/, merged in that order."""
    tool = shutil.which("docker-compose")
    require(tool is not None, "docker-compose is not installed (apt-get install -y docker-compose)")
    env_file = env_dir / ".env"
    env_file.write_text("".join(f"{k}=test-{k.lower()}\n" for k in (*SECRETS, "AIRFLOW_ADMIN_PASSWORD")))
    files = [arg for name in names for arg in ("-f", str(DOCKER / name))]
    argv = [str(tool), "--project-directory", str(DOCKER), *files, "--env-file", str(env_file), "config"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout))


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _config(tmp_path_factory.mktemp("edge-compose"), "docker-compose.yaml", "docker-compose.edge.yaml")


def _networks(service: dict[str, Any]) -> set[str]:
    return set(service.get("networks") or {})


def test_the_edge_host_shares_a_network_with_the_api_server_only(merged: dict[str, Any]) -> None:
    services = merged["services"]
    assert _networks(services["infer-3"]) == {"edge"}
    on_edge = {name for name, s in services.items() if "edge" in _networks(s)}
    assert on_edge == {"infer-3", "airflow-apiserver"}
    assert "ports" not in services["infer-3"]


def test_the_edge_worker_holds_no_database_broker_or_fernet_secret(merged: dict[str, Any]) -> None:
    env = merged["services"]["infer-3"]["environment"]
    assert not {k for k in env if "SQL_ALCHEMY" in k or "CELERY" in k or "FERNET" in k}
    assert not [v for v in env.values() if "test-postgres_password" in str(v) or "test-redis_password" in str(v)]
    assert env["AIRFLOW__EDGE__API_URL"] == "http://airflow-apiserver:8080/edge_worker/v1/rpcapi"
    assert (
        env["AIRFLOW__API_AUTH__JWT_SECRET"]
        == merged["services"]["airflow-apiserver"]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    )


def test_the_edge_worker_serves_its_own_queue_as_the_caches_owner(merged: dict[str, Any]) -> None:
    worker = merged["services"]["infer-3"]
    command = worker["command"]
    assert command[:2] == ["edge", "worker"]
    assert command[command.index("--queues") + 1] == command[command.index("--edge-hostname") + 1] == "infer-3"
    assert command[command.index("--concurrency") + 1] == "1"
    assert worker["user"] == "10001:10001"
    assert any(
        str(v).startswith("infer-3-cache:") or (isinstance(v, dict) and v.get("source") == "infer-3-cache")
        for v in worker["volumes"]
    )


def test_every_component_routes_the_same_hosts_with_the_same_executors(merged: dict[str, Any]) -> None:
    services = merged["services"]
    settings = {n: services[n]["environment"]["OVCACHE_QUEUE_HOSTS"] for n in (*CENTRAL, "infer-2-worker", "infer-3")}
    assert len(set(settings.values())) == 1, settings
    hosts = {h["name"]: h.get("executor") for h in json.loads(next(iter(settings.values())))}
    assert hosts == {"infer-2": None, "infer-3": "EdgeExecutor"}
    executors = {services[n]["environment"]["AIRFLOW__CORE__EXECUTOR"] for n in (*CENTRAL, "infer-2-worker", "infer-3")}
    assert executors == {"CeleryExecutor,airflow.providers.edge3.executors.EdgeExecutor"}
    assert services["airflow-apiserver"]["environment"]["AIRFLOW__EDGE__API_ENABLED"] == "true"


def test_on_the_stand_ins_every_edge_image_builds_on_the_host_network(tmp_path: Path) -> None:
    """The stack tests/docker/test_stack.py runs: with no registry, every build reaches PyPI the host's way."""
    names = (
        "docker-compose.yaml",
        "docker-compose.stand-ins.yaml",
        "docker-compose.edge.yaml",
        "docker-compose.edge.stand-ins.yaml",
    )
    services = _config(tmp_path, *names)["services"]
    edge_builds = {
        n: s["build"] for n, s in services.items() if "build" in s and s["build"]["dockerfile"].endswith("edge.Dockerfile")
    }
    assert set(edge_builds) == {*CENTRAL, "infer-3"}, sorted(edge_builds)
    assert {n: b.get("network") for n, b in edge_builds.items()} == dict.fromkeys(edge_builds, "host")
