"""The examples in the provider's docs are copyable: each one parses into DAGs and is AIR-clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = [DOCS / "connections.md", DOCS / "sensors.md", DOCS / "assets.md", *sorted((DOCS / "operators").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for n, code in enumerate(BLOCK.findall(page.read_text())):
            found.append((f"{page.relative_to(DOCS)}#{n}", code))
    return found


def test_every_page_exists_and_has_an_example() -> None:
    names = {page.relative_to(DOCS).as_posix() for page in PAGES}
    assert {"operators/warm.md", "operators/verify.md", "operators/invalidate.md", "sensors.md", "connections.md"} <= names
    with_examples = {name.split("#")[0] for name, _ in _examples()}
    assert with_examples >= {"operators/warm.md", "operators/verify.md", "operators/invalidate.md", "sensors.md", "assets.md"}


@pytest.mark.parametrize(("name", "code"), _examples(), ids=[name for name, _ in _examples()])
def test_example_parses(airflow_db: Path, tmp_path: Path, name: str, code: str) -> None:
    """Each example, saved as a DAG file, is parsed the way the DAG processor parses it."""
    from airflow.dag_processing.dagbag import DagBag

    path = tmp_path / "example_dag.py"
    path.write_text(code)
    if "DAG(" not in code:
        compile(code, str(path), "exec")
        return
    bag = DagBag(dag_folder=str(path), safe_mode=False)
    assert not bag.import_errors, bag.import_errors
    assert bag.dags, f"{name} defines no DAG"
    for dag in bag.dags.values():
        dag.validate()


def test_examples_are_air_clean(tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    require(ruff.exists(), "ruff is not installed in this environment")
    for n, (_, code) in enumerate(_examples()):
        (tmp_path / f"example_{n}.py").write_text(code)
    out = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "AIR,F", "--preview", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
