"""The test modules collected before tests/provider must not import Airflow.

tests/provider/conftest.py points Airflow at a throwaway AIRFLOW_HOME before Airflow is first
imported, and refuses to run if something imported it earlier: then every Airflow tier errors at
collection. pytest collects tests/benchmarks, tests/cli and tests/core first, so a module there
that imports the hook, an operator or the fleet package at the top breaks the whole run, but only
when the full suite runs. This finds it in any run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EARLY = ("benchmarks", "cli", "core")


def test_early_test_modules_import_without_airflow() -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for folder in EARLY
        for path in (ROOT / "tests" / folder).glob("test_*.py")
    )
    assert len(modules) > 10
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'airflow' in sys.modules:\n"
        "        print('AIRFLOW', name); break\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert "AIRFLOW" not in out.stdout, f"{out.stdout.strip()} imports Airflow at the top: import the hook side inside the test"
