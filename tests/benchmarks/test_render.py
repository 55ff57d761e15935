"""The benchmark page's tables come from the stored results, and no benchmark reaches into private core names."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def render() -> Iterator[ModuleType]:
    sys.path.insert(0, str(BENCH_DIR))
    try:
        import render

        yield render
    finally:
        sys.path.remove(str(BENCH_DIR))


def test_refilling_the_tables_from_the_stored_results_changes_nothing(render: ModuleType) -> None:
    """Regression: the page's figures are exactly what results/*.json hold, and every table has its marker."""
    import benchlib

    page = benchlib.DOC_PATH.read_text()
    text, kept, unplaced = render.fill(page, render.tables(benchlib.RESULTS_DIR))
    assert (kept, unplaced) == ([], [])
    assert text == page


def test_fill_replaces_only_between_markers(render: ModuleType) -> None:
    page = "prose 1\n<!-- table:a -->\nold\n<!-- /table -->\nprose 2\n<!-- table:gone -->\nkept\n<!-- /table -->\n"
    text, kept, unplaced = render.fill(page, {"a": "| new |", "b": "| nowhere |"})
    assert text == "prose 1\n<!-- table:a -->\n| new |\n<!-- /table -->\nprose 2\n<!-- table:gone -->\nkept\n<!-- /table -->\n"
    assert (kept, unplaced) == (["gone"], ["b"])


def test_no_benchmark_imports_or_patches_a_private_package_name() -> None:
    """Regression: benchmarks read the core's trace spans; renaming a private method must not break them."""
    offences = []
    for path in sorted(BENCH_DIR.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("airflow_ovcache"):
                offences += [f"{path.name}: imports {a.name}" for a in node.names if a.name.startswith("_")]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
                offences.append(f"{path.name}:{node.lineno}: setattr")
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                offences.append(f"{path.name}:{node.lineno}: .{node.attr}")
    assert offences == []
