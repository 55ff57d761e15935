"""The example DAGs under a real Airflow: the same SQLite home as the provider tests, the DAG files copied in."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
