"""A real Airflow API server on SQLite for the browser tier, and runs of real DAGs against its database.

One ``AIRFLOW_HOME`` in a temporary folder with a SQLite metadata database, the
DAG files copied into its dags folder, ``airflow db migrate``, then one process:
``airflow api-server`` on 127.0.0.1 and a free port, with the simple auth
manager and every user an admin (so the browser needs no login form). DAG runs
are made by ``airflow dags test`` in a child process against the same database:
what a scheduler and worker would write, without waiting on either. The test
process never imports Airflow; everything Airflow runs in children with an
environment of their own, stopped by process group at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.distributed.cluster import AIRFLOW, Component, free_port


@dataclass
class UiStack:
    root: Path
    dag_files: list[Path]
    extra_env: dict[str, str] = field(default_factory=dict)
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = self.root / "airflow"
        self.logs = self.root / "component-logs"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OVCACHE_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            }
        )
        env.update(self.extra_env)
        return env

    def _run(self, name: str, args: list[str], timeout: float, **extra_env: str) -> subprocess.CompletedProcess[bytes]:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            done = subprocess.run(
                [AIRFLOW, *args], env={**self.env(), **extra_env}, stdout=out, stderr=subprocess.STDOUT, timeout=timeout
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{log.read_text()[-4000:]}")
        return done

    def prepare(self) -> None:
        for path in (self.home / "dags", self.logs):
            path.mkdir(parents=True, exist_ok=True)
        for source in self.dag_files:
            shutil.copy2(source, self.home / "dags" / source.name)
        self._run("db-migrate", ["db", "migrate"], timeout=300)

    def start(self) -> None:
        component = Component(
            "api-server",
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            self.env(),
            self.logs / "api-server.log",
        )
        self.components.append(component)
        component.start()

    def wait_until_up(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.components[0].alive():
                raise RuntimeError(f"the API server exited:\n{self.components[0].tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/api/v2/monitor/health", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            time.sleep(1)
        raise TimeoutError(f"the API server did not answer in {timeout:.0f}s ({last!r}):\n{self.components[0].tail()}")

    def dags_test(self, dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 300, **extra_env: str) -> None:
        """One run of ``dag_id`` written to the stack's database, as ``airflow dags test`` makes it."""
        args = ["dags", "test", dag_id]
        if conf:
            args += ["--conf", json.dumps(conf)]
        self._run(f"dags-test-{dag_id}", args, timeout=timeout, **extra_env)

    def run_ids(self, dag_id: str) -> list[str]:
        """The DAG's runs, oldest first, read straight from the SQLite file (no Airflow in the test process)."""
        import sqlite3

        with contextlib.closing(sqlite3.connect(self.home / "airflow.db")) as db:
            rows = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id", (dag_id,)).fetchall()
        return [str(r[0]) for r in rows]

    def airflow(self, *args: str, timeout: float = 120) -> None:
        self._run("cli", list(args), timeout=timeout)

    def stop(self, grace: float = 15) -> None:
        import signal

        for component in self.components:
            component.signal(signal.SIGTERM)
        for component in self.components:
            if component.proc is None:
                continue
            try:
                component.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            component.signal(signal.SIGKILL)
            try:
                component.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def diagnostics(self, lines: int = 80) -> str:
        parts = [f"===== {c.name}: last {lines} lines =====\n{c.tail(lines)}" for c in self.components]
        for log in sorted(self.logs.glob("dags-test-*.log")):
            parts.append(f"===== {log.name} =====\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)
