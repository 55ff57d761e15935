"""A real, multi-process Airflow on this machine: PostgreSQL, Redis, CeleryExecutor, per-host workers.

:class:`Cluster` creates what it needs under names of its own and removes exactly
those again: a database ``ovcache_dist_<random>`` on the local PostgreSQL, Redis
keys under the prefix ``ovcache-dist-<random>:`` in one Redis database (kombu's
``global_keyprefix``), an ``AIRFLOW_HOME`` in a temporary directory, and one
process group per Airflow component. Nothing else on the machine is touched.

Each simulated inference host gets its own Celery worker (``--queues <host>``)
and its own triggerer (``--queues <host>``, with ``[triggerer] queues_enabled``),
and both report the host as their hostname (``[core] hostname_callable``): what
a real host's worker and triggerer would do with their own machine names.

The test process never imports Airflow: it talks to the cluster through the
REST API, as a release pipeline would.

Where the services are: ``$OVCACHE_TEST_PG`` (a libpq DSN of a role that may
create databases; default ``postgres`` on 127.0.0.1:5432 without a password)
with ``$OVCACHE_TEST_PG_URL`` (the same as an SQLAlchemy URL without the
database), ``$OVCACHE_TEST_REDIS`` and ``$OVCACHE_TEST_REDIS_DB``. ``.ci/run``
sets the first two for a role it creates.
"""

from __future__ import annotations

import base64
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PG_DSN = os.environ.get("OVCACHE_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_URL = os.environ.get("OVCACHE_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("OVCACHE_TEST_REDIS", "redis://127.0.0.1:6379")
# A Redis database of its own; even there, only keys under this run's prefix are created or removed.
REDIS_DB = int(os.environ.get("OVCACHE_TEST_REDIS_DB", "11"))
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

HOSTNAME_MODULE = '''"""[core] hostname_callable of the test cluster: each component reports the machine it stands for."""
import os


def hostname() -> str:
    return os.environ["OVCACHE_TEST_HOSTNAME"]
'''


def postgres_reachable() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_DSN, connect_timeout=3).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False


def redis_reachable() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}", socket_timeout=3).ping())
    except Exception:  # noqa: BLE001
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_process_group() -> None:
    """In the child before exec: a process group of its own, and SIGTERM if the test process dies."""
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class Component:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_own_process_group,
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])


@dataclass
class Host:
    """One simulated inference host: its queue, model repository and cache directory."""

    name: str
    root: Path

    @property
    def queue(self) -> str:
        return self.name

    @property
    def repository(self) -> Path:
        return self.root / "models"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"


@dataclass
class Cluster:
    root: Path
    hosts: list[Host]
    dag_files: list[Path]
    extra_env: dict[str, str] = field(default_factory=dict)
    # Task slots of the control plane's worker (the default queue); each host's worker has one.
    control_concurrency: int = 1
    token: str = ""
    components: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        tag = secrets.token_hex(4)
        self.database = f"ovcache_dist_{tag}"
        self.key_prefix = f"ovcache-dist-{tag}:"
        self.home = self.root / "airflow"
        self.logs = self.root / "component-logs"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.user, self.password = "release-bot", secrets.token_urlsafe(12)
        self.fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        self._db_created = False
        self._redis_used = False

    # -- configuration ---------------------------------------------------------------------------
    def common_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OVCACHE_"))}
        sql = f"{PG_URL}/{self.database}"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql,
                "AIRFLOW__CELERY__BROKER_URL": f"{REDIS_URL}/{REDIS_DB}",
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sql,  # SQLAlchemy 2.1 reads plain postgresql:// as psycopg 3
                "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": self.key_prefix,
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                # deferred tasks hand their trigger to a triggerer of their own queue: the host's
                "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "240",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                # the hostname callable; then the caller's path, so a worktree's airflow_ovcache wins over the installed one
                "PYTHONPATH": os.pathsep.join(p for p in (str(self.root / "pylib"), os.environ.get("PYTHONPATH", "")) if p),
                "AIRFLOW_CONN_OVCACHE_LOCAL": json.dumps({"conn_type": "ovcache", "extra": {"transport": "local"}}),
                "OVCACHE_QUEUE_HOSTS": ",".join(f"{h.name}:{h.cache_dir}:{h.repository}" for h in self.hosts),
                "OVCACHE_QUEUE_CONN_ID": "ovcache_local",
            }
        )
        env.update(self.extra_env)
        return env

    def _as_machine(self, env: dict[str, str], hostname: str, **extra: str) -> dict[str, str]:
        return {
            **env,
            "OVCACHE_TEST_HOSTNAME": hostname,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "ovcache_test_hostname.hostname",
            **extra,
        }

    # -- bring-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Database, AIRFLOW_HOME, DAG files, login; then ``airflow db migrate``."""
        import psycopg2

        for path in (self.home / "dags", self.logs, self.root / "pylib"):
            path.mkdir(parents=True, exist_ok=True)
        (self.root / "pylib" / "ovcache_test_hostname.py").write_text(HOSTNAME_MODULE)
        for source in self.dag_files:
            shutil.copy2(source, self.home / "dags" / source.name)
        (self.home / "passwords.json").write_text(json.dumps({self.user: self.password}))
        conn = psycopg2.connect(PG_DSN, connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()
        self._db_created = True
        self._redis_used = True
        log = self.logs / "db-migrate.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.common_env(), stdout=out, stderr=subprocess.STDOUT, timeout=300
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{log.read_text()[-4000:]}")

    def start(self) -> None:
        env = self.common_env()
        control = self._as_machine(env, "control")
        specs: list[tuple[str, list[str], dict[str, str]]] = [
            ("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"], control),
            ("scheduler", ["scheduler"], control),
            ("dag-processor", ["dag-processor"], control),
            # the control plane's own worker: bookkeeping tasks on the default queue
            (
                "worker-control",
                self._worker_args("default", "control", self.control_concurrency),
                self._with_log_port(control, "WORKER"),
            ),
        ]
        for host in self.hosts:
            machine = self._as_machine(env, host.name, OVCACHE_HOST=host.name)
            specs.append(
                (f"worker-{host.name}", self._worker_args(host.queue, host.name), self._with_log_port(machine, "WORKER"))
            )
            specs.append(
                (f"triggerer-{host.name}", ["triggerer", "--queues", host.queue], self._with_log_port(machine, "TRIGGER"))
            )
        for name, args, component_env in specs:
            component = Component(name, [AIRFLOW, *args], component_env, self.logs / f"{name}.log")
            self.components.append(component)
            component.start()

    @staticmethod
    def _worker_args(queue: str, name: str, concurrency: int = 1) -> list[str]:
        return [
            "celery",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            str(concurrency),
            "--celery-hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]

    @staticmethod
    def _with_log_port(env: dict[str, str], kind: str) -> dict[str, str]:
        return {**env, f"AIRFLOW__LOGGING__{kind}_LOG_SERVER_PORT": str(free_port())}

    # -- the REST API ----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None, *, auth: bool = True, timeout: float = 30) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        """Call ``probe`` until it returns something truthy; fail naming ``what`` (and any component that died)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            dead = [c.name for c in self.components if not c.alive()]
            if dead:
                raise RuntimeError(f"while waiting for {what}: component(s) {', '.join(dead)} exited")
            try:
                last = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(interval)
        raise TimeoutError(f"{what}: not after {timeout:.0f}s (last: {last!r})"[:2000])

    def login(self, timeout: float = 120) -> None:
        def token() -> str | None:
            got = self.request("POST", "/auth/token", {"username": self.user, "password": self.password}, auth=False)
            return got.get("access_token") if got else None

        self.token = self.wait_for("the API server to issue a token", token, timeout)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run, page by page (the API serves at most ``[api] maximum_page_limit``, 100)."""
        found: list[dict[str, Any]] = []
        while True:
            got = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100&offset={len(found)}")
            found += got["task_instances"]
            if not got["task_instances"] or len(found) >= got["total_entries"]:
                return found

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value?map_index={map_index}&deserialize=true"
        return self.request("GET", path)["value"]

    def jobs(self, job_type: str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/api/v2/jobs?job_type={job_type}&limit=100")["jobs"])

    # -- tear-down -------------------------------------------------------------------------------
    def stop(self, grace: float = 20) -> None:
        for component in self.components:
            component.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for component in self.components:
            if component.proc is None:
                continue
            try:
                component.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            component.signal(signal.SIGKILL)  # whatever of its group is left, pool children included
            try:
                component.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def destroy(self) -> list[str]:
        """Stop every component, drop the database, remove this run's Redis keys; returns what could not be cleaned."""
        problems = []
        self.stop()
        if self._db_created:
            try:
                import psycopg2

                conn = psycopg2.connect(PG_DSN, connect_timeout=5)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
                conn.close()
            except Exception as exc:  # noqa: BLE001 - report, keep cleaning
                problems.append(f"database {self.database}: {exc}")
        if self._redis_used:
            try:
                import redis

                client = redis.Redis.from_url(f"{REDIS_URL}/{REDIS_DB}")
                keys = list(client.scan_iter(match=self.key_prefix + "*", count=500))
                if keys:
                    client.delete(*keys)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"redis keys {self.key_prefix}*: {exc}")
        return problems

    def diagnostics(self, lines: int = 60) -> str:
        parts = []
        for component in self.components:
            state = "running" if component.alive() else f"exited {component.proc.returncode if component.proc else '-'}"
            parts.append(
                f"===== {component.name} ({state}), last {lines} lines of {component.log} =====\n{component.tail(lines)}"
            )
        return "\n".join(parts)
