"""The example DAGs under a real Airflow: the same SQLite home as the provider tests, the DAG files copied in."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.provider.conftest import DAGS_FOLDER, airflow_db, ovcache_conn  # noqa: F401 - fixtures re-exported

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def example_dags(airflow_db: Path) -> Path:  # noqa: F811
    for source in EXAMPLE_DAGS.glob("*.py"):
        shutil.copy2(source, DAGS_FOLDER / source.name)
    return DAGS_FOLDER


@pytest.fixture
def fleet(tmp_path: Path, repo: Path, ovcache_conn, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    """A fleet of local hosts: each its own repository copy and cache, one inventory, one ovcache connection."""

    def make(
        names: list[str], retain: str = "latest:1", broken: dict[str, str] | None = None, models: str = "mlp,tiny"
    ) -> dict[str, dict[str, Path]]:
        ovcache_conn("ovcache_local", transport="local")
        ovcache_conn("ovcache_no_agent", transport="local", agent_command=str(tmp_path / "not-installed" / "ovcache"))
        monkeypatch.setenv("OVCACHE_RELEASE_MODELS", models)
        monkeypatch.setenv("OVCACHE_WAIT_FOR_VERSION_SECONDS", "5")
        hosts = {}
        lines = [
            "[defaults]",
            'conn_id = "ovcache_local"',
            f'retain = "{retain}"',
            'properties = { PERFORMANCE_HINT = "LATENCY" }',
            "",
        ]
        for name in names:
            root = tmp_path / name
            models_dir = root / "models"
            if not models_dir.exists():
                shutil.copytree(repo, models_dir)
            cache = root / "cache"
            override = (broken or {}).get(name)
            if override == "cache-is-a-file":
                root.mkdir(exist_ok=True)
                cache.write_text("not a directory")
            hosts[name] = {"models": models_dir, "cache": cache}
            lines += ["[[hosts]]", f'name = "{name}"', f'cache_dir = "{cache}"', f'repository = "{models_dir}"']
            if override == "no-agent":
                lines.append('conn_id = "ovcache_no_agent"')
            lines.append("")
        inventory = tmp_path / "fleet.toml"
        inventory.write_text("\n".join(lines))
        monkeypatch.setenv("OVCACHE_INVENTORY", str(inventory))
        monkeypatch.setenv("OVCACHE_REPORT_DIR", str(tmp_path / "reports"))
        return hosts

    return make


@dataclass
class S3StandIn:
    """An S3 API server on 127.0.0.1 with one bucket, and the Airflow ``aws`` connection that reaches it."""

    conn_id: str
    bucket: str
    client: Any

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object under ``prefix`` in the bucket: key -> bytes."""
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: self.client.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read() for o in listed}

    def buckets(self) -> list[str]:
        """The server's buckets (a hub must never create one)."""
        return sorted(b["Name"] for b in self.client.list_buckets()["Buckets"])


@pytest.fixture
def s3_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3StandIn]:
    """A stand-in for an object store: moto's S3 API server, reached through Airflow's Amazon provider.

    No real object store can run on this machine (none is packaged here, and nothing outside is
    reachable). moto's server speaks S3's HTTP API in memory, so what this proves is the relay's
    calls through ``ObjectStoragePath``, s3fs and the provider's connection handling against S3's
    semantics (no directories, no rename, buckets), not an object store's consistency or speed.
    """
    require(
        all(importlib.util.find_spec(m) for m in ("moto", "s3fs", "airflow.providers.amazon")),
        "the hub tests need moto, s3fs and apache-airflow-providers-amazon (the hub-tests extra: make venv)",
    )
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"aws_access_key_id": "ovcache-test", "aws_secret_access_key": "ovcache-test-secret"}
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        client.create_bucket(Bucket="ovcache-hub")
        conn = {
            "conn_type": "aws",
            "login": keys["aws_access_key_id"],
            "password": keys["aws_secret_access_key"],
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_OVCACHE_HUB", json.dumps(conn))
        yield S3StandIn("ovcache_hub", "ovcache-hub", client)
    finally:
        server.stop()
