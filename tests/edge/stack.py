"""A real Airflow with the Edge executor, and edge workers in network namespaces that only dial out.

:class:`EdgeStack` runs, in the root namespace, the API server, scheduler, DAG
processor and triggerer on a fresh PostgreSQL database (``ovcache_edge_<random>``,
dropped at the end), with ``[core] executor = LocalExecutor,EdgeExecutor``: the
bookkeeping tasks run on the scheduler's LocalExecutor, every task of an edge host
goes to the Edge executor and waits in the ``edge_job`` table for the host's worker.

Each inference host is a network namespace (:class:`EdgeFleet`, the fleet of
``tests/infra/fleet.py`` without sshd) running ``airflow edge worker --queues <host>``
with an ``AIRFLOW_HOME`` of its own and no database: it knows only the API server's
URL and the JWT secret. A firewall inside the namespace (its own ``iptables``
OUTPUT chain, nothing of the root namespace's) lets packets out only to the API
server's address and port, so the worker reaches Airflow the way a box behind NAT
does: by dialling out, over HTTP, to one address. The API server listens on the
bridge's address, where both the namespaces and the root-namespace components reach it.

The test process never imports Airflow: it drives the stack through the REST API.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_ovcache.fleet.edge import EdgeWorkerSpec, edge_worker_argv
from tests.distributed.cluster import AIRFLOW, PG_DSN, PG_URL, Component, free_port
from tests.infra.fleet import Fleet, Host

EXECUTORS = "LocalExecutor,airflow.providers.edge3.executors.EdgeExecutor"
# The cache's owner on every host: the edge worker and the agent it starts run as this user, never root.
CACHE_OWNER = "nobody"
EDGE_DB_MANAGER = "airflow.providers.edge3.models.db.EdgeDBManager"
# How long a task may sit in an edge host's queue before the scheduler fails it (one attempt, no requeue):
# the bound on an offline host in this tier.
QUEUED_TIMEOUT = 12
QUEUED_CHECK_INTERVAL = 2


class EdgeFleet(Fleet):
    """Hosts as network namespaces with their own directories and no sshd: nothing listens on an edge host."""

    def start(self) -> EdgeFleet:
        if self.started:
            return self
        self.started = True
        try:
            self._create_network()
            for host in self.hosts:
                for folder in (host.cache_dir, host.repository):
                    folder.mkdir(parents=True, exist_ok=True)
        except BaseException:
            self.stop(raise_errors=False)
            raise
        return self

    def only_dial_out_to(self, address: str, port: int) -> None:
        """Each namespace's own firewall: loopback, and TCP to ``address:port``; every other packet out is dropped."""
        for host in self.hosts:
            for rule in (
                ["-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"],
                ["-A", "OUTPUT", "-d", address, "-p", "tcp", "--dport", str(port), "-j", "ACCEPT"],
                ["-P", "OUTPUT", "DROP"],
            ):
                host.run(["iptables", "-w", *rule], check=True)


@dataclass
class EdgeStack:
    root: Path
    fleet: EdgeFleet
    dag_files: list[Path]
    extra_env: dict[str, str] = field(default_factory=dict)
    token: str = ""
    components: list[Component] = field(default_factory=list)
    workers: dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.database = f"ovcache_edge_{secrets.token_hex(4)}"
        self.home = self.root / "airflow"
        self.dags = self.home / "dags"
        self.logs = self.root / "component-logs"
        self.port = free_port()
        self.user, self.password = "release-bot", secrets.token_urlsafe(12)
        self.jwt_secret = secrets.token_hex(32)
        self.fernet_key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        self._db_created = False

    @property
    def address(self) -> str:
        """The API server's address: the bridge, reachable from the root namespace and from every host."""
        return self.fleet.gateway

    @property
    def base_url(self) -> str:
        return f"http://{self.address}:{self.port}"

    # -- configuration ---------------------------------------------------------------------------
    def hosts_setting(self) -> str:
        """``$OVCACHE_QUEUE_HOSTS``: every host an edge host, its queue its name."""
        return json.dumps(
            [
                {"name": h.name, "cache_dir": str(h.cache_dir), "repository": str(h.repository), "executor": "EdgeExecutor"}
                for h in self.fleet
            ]
        )

    def _shared_env(self) -> dict[str, str]:
        """What the central components and the edge workers both need: the DAGs' settings, URLs, the JWT secret."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OVCACHE_"))}
        env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": EXECUTORS,
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
                "AIRFLOW__EDGE__API_URL": f"{self.base_url}/edge_worker/v1/rpcapi",
                "AIRFLOW__EDGE__JOB_POLL_INTERVAL": "1",
                "AIRFLOW__EDGE__HEARTBEAT_INTERVAL": "2",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "OVCACHE_QUEUE_HOSTS": self.hosts_setting(),
                "OVCACHE_RELEASE_MODELS": "mlp",
                "OVCACHE_WAIT_POKE_SECONDS": "2",
                "OVCACHE_WAIT_FOR_VERSION_SECONDS": "120",
            }
        )
        env.update(self.extra_env)
        return env

    def central_env(self) -> dict[str, str]:
        env = self._shared_env()
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.user}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__PARALLELISM": "8",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"{PG_URL}/{self.database}",
                "AIRFLOW__DATABASE__EXTERNAL_DB_MANAGERS": EDGE_DB_MANAGER,
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
                "AIRFLOW__EDGE__API_ENABLED": "True",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(QUEUED_TIMEOUT),
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": str(QUEUED_CHECK_INTERVAL),
                "AIRFLOW__SCHEDULER__NUM_STUCK_IN_QUEUED_RETRIES": "0",
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            }
        )
        return env

    def worker_env(self, host: Host) -> dict[str, str]:
        """An edge host's worker: its own AIRFLOW_HOME, no database, the API URL and the JWT secret only."""
        env = self._shared_env()
        env.update(
            {
                "AIRFLOW_HOME": str(host.root / "airflow-home"),
                "HOME": str(host.root / "airflow-home"),
                # Nothing listens there in the namespace: any attempt to use a database fails loudly.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://nobody@127.0.0.1:9/none",
                "AIRFLOW_CONN_OVCACHE_LOCAL": json.dumps({"conn_type": "ovcache", "extra": {"transport": "local"}}),
                "OVCACHE_QUEUE_CONN_ID": "ovcache_local",
                "OVCACHE_HOST": host.name,
            }
        )
        return env

    # -- bring-up --------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Database, AIRFLOW_HOME, DAG files, login, the namespaces' firewalls; then ``airflow db migrate``."""
        import psycopg2

        for path in (self.dags, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        for source in self.dag_files:
            shutil.copy2(source, self.dags / source.name)
        (self.home / "passwords.json").write_text(json.dumps({self.user: self.password}))
        owner = pwd.getpwnam(CACHE_OWNER)
        for host in self.fleet:
            # What the worker owns: its AIRFLOW_HOME and the cache (0700, as docs/security.md asks);
            # the model repository stays the release process's, readable by all.
            for folder in (host.root / "airflow-home", host.cache_dir):
                folder.mkdir(parents=True, exist_ok=True)
                os.chown(folder, owner.pw_uid, owner.pw_gid)
            host.cache_dir.chmod(0o700)
        self.fleet.only_dial_out_to(self.address, self.port)
        conn = psycopg2.connect(PG_DSN, connect_timeout=5)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.database}"')
        conn.close()
        self._db_created = True
        log = self.logs / "db-migrate.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [AIRFLOW, "db", "migrate"], env=self.central_env(), stdout=out, stderr=subprocess.STDOUT, timeout=300
            )
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{log.read_text()[-4000:]}")

    def start(self) -> None:
        env = self.central_env()
        specs = [
            ("api-server", ["api-server", "--host", self.address, "--port", str(self.port), "--workers", "1"]),
            ("scheduler", ["scheduler"]),
            ("dag-processor", ["dag-processor"]),
            ("triggerer", ["triggerer"]),
        ]
        for name, args in specs:
            component = Component(name, [AIRFLOW, *args], env, self.logs / f"{name}.log")
            self.components.append(component)
            component.start()
        for host in self.fleet:
            self.start_worker(host)

    def start_worker(self, host: Host) -> Component:
        """(Re)start the host's edge worker inside its namespace."""
        argv = edge_worker_argv(EdgeWorkerSpec(host=host.name, queue=host.name, concurrency=1, airflow=AIRFLOW))
        worker = Component(
            f"edge-worker-{host.name}",
            ["ip", "netns", "exec", host.namespace, "runuser", "-u", CACHE_OWNER, "--", *argv],
            self.worker_env(host),
            self.logs / f"edge-worker-{host.name}.log",
        )
        self.workers[host.name] = worker
        worker.start()
        return worker

    def stop_worker(self, host: Host, timeout: float = 60) -> None:
        """Stop the host's edge worker as systemd would (SIGTERM) and wait until it has exited."""
        worker = self.workers.pop(host.name)
        worker.signal(signal.SIGTERM)
        assert worker.proc is not None
        try:
            worker.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            worker.signal(signal.SIGKILL)
            worker.proc.wait(timeout=10)

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
            dead = [c.name for c in [*self.components, *self.workers.values()] if not c.alive()]
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

    def login(self, timeout: float = 180) -> None:
        def token() -> str | None:
            got = self.request("POST", "/auth/token", {"username": self.user, "password": self.password}, auth=False)
            return got.get("access_token") if got else None

        self.token = self.wait_for("the API server to issue a token", token, timeout)

    def edge_workers(self) -> dict[str, dict[str, Any]]:
        """The Edge executor's view of its workers (the UI's Edge Worker page): name -> state, queues, heartbeat."""
        return {w["worker_name"]: w for w in self.request("GET", "/edge_worker/ui/worker")["workers"]}

    def task_instances(self, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
        got = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return {(ti["task_id"], ti["map_index"]): ti for ti in got["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value?map_index={map_index}&deserialize=true"
        return self.request("GET", path)["value"]

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        run = self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def finished(self, dag_id: str, run_id: str, timeout: float) -> str:
        def state() -> str | None:
            got = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return got if got in ("success", "failed") else None

        return str(self.wait_for(f"run {run_id} to finish", state, timeout=timeout, interval=1))

    # -- tear-down -------------------------------------------------------------------------------
    def destroy(self, grace: float = 20) -> list[str]:
        """Stop the workers and components, drop the database; returns what could not be cleaned."""
        problems = []
        everything = [*self.workers.values(), *self.components]
        for component in everything:
            component.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for component in everything:
            if component.proc is None:
                continue
            try:
                component.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            component.signal(signal.SIGKILL)
            try:
                component.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append(f"{component.name} did not exit")
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
        return problems

    def diagnostics(self, lines: int = 60) -> str:
        parts = []
        for component in [*self.components, *self.workers.values()]:
            state = "running" if component.alive() else f"exited {component.proc.returncode if component.proc else '-'}"
            parts.append(
                f"===== {component.name} ({state}), last {lines} lines of {component.log} =====\n{component.tail(lines)}"
            )
        for log in sorted(self.root.rglob("*.log")):
            if log.parent == self.logs:
                continue
            text = log.read_text(errors="replace")
            if "ERROR" in text or "Traceback" in text:
                parts.append(f"===== task log {log.relative_to(self.root)} =====\n" + "\n".join(text.splitlines()[-40:]))
        return "\n".join(parts)
