"""Fixtures for the security tests: key files, an agent fed on stdin, and a real Airflow for the hook tests.

The Airflow set-up (temporary ``AIRFLOW_HOME``, SQLite database, ``ovcache``
connections as environment variables) is the provider tests' own, imported
from ``tests/provider/conftest.py`` so that both suites run against the same
kind of Airflow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.provider.conftest import airflow_db, ovcache_conn  # noqa: F401 - fixtures for the hook tests

AGENT = [sys.executable, "-m", "airflow_ovcache.cli.main"]


def make_key_file(path: Path, key: bytes | None = None, mode: int = 0o600) -> Path:
    path.write_bytes(key if key is not None else os.urandom(32))
    path.chmod(mode)
    return path


def agent(*args: str, stdin: bytes | None = None, user: str | None = None, env: dict[str, str] | None = None) -> Run:
    """The real agent, with ``stdin`` as its standard input (how a key is delivered)."""
    cmd = [*AGENT, *args]
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, env={**os.environ, **(env or {})}, timeout=300)
    return Run(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return make_key_file(tmp_path / "cache.key")
