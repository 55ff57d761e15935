"""The docker/ deployment, for real: build every image, bring the stack up, run a release through it.

What a platform team does on its first day, in order, with the project's own files:

1. a Docker engine (``tests/infra/docker_engine.py``: its own daemon, socket and data root,
   ``--iptables=false``), and three user-defined networks for the compose files' ``control``,
   ``inference`` and ``edge`` networks, on /24s chosen like the fleet tier's, so no route of this
   machine overlaps them;
2. the local stand-in base images (``docker/build/stand-in-bases.sh``), then every image of the
   compose file, built with ``docker/docker-compose.stand-ins.yaml`` (no registry is reachable),
   then the Edge executor's images on top of those (``docker-compose.edge.yaml`` with
   ``docker-compose.edge.stand-ins.yaml``); the stack runs all four files, so it has an edge host,
   infer-3, whose worker dials out to the API server alone;
3. ``scripts/bootstrap.sh`` for the secrets, ``compose up``, every service healthy (the one-shot
   services exited 0), ``scripts/pin-host-keys.sh`` for infer-1, ``compose up`` again;
4. the edge worker registered with the API server (``airflow edge list-workers`` there);
   through the REST API: the release warm-up for classifier version 2, over SSH for infer-1,
   by queue for infer-2 (Celery) and infer-3 (Edge executor, on its own worker); then inside
   each inference host's container, a plain OpenVINO
   compile as a server makes it must load the blob from that host's cache volume
   (``LOADED_FROM_CACHE``) and write none;
5. the nightly verification of both kinds of host, and its JSON report, read back.

Then ``compose down -v``, the networks, and the daemon if this run started it (in ``finally``).
Everything is named per run (project, networks, bridges), so a stack left by a killed run
never collides with the next. Under CI=true a missing prerequisite fails instead of skipping.
The phases' durations are printed at the end (``docs/deployment.md`` has the measured ones).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.docker.conftest import STACK_TIMINGS
from tests.docker.test_docker import read_env_file
from tests.infra import fleet
from tests.infra.docker_engine import Engine, engine_prerequisites, exclusive

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE_FILES = (DOCKER / "docker-compose.yaml", DOCKER / "docker-compose.stand-ins.yaml")
# The edge host (infer-3) on top: its images start from the base files' images, so those are built first.
EDGE_FILES = (DOCKER / "docker-compose.edge.yaml", DOCKER / "docker-compose.edge.stand-ins.yaml")
SUBNET_FIRST_OCTETS = (10, 214)  # beside the fleet tier's 10.213.K.0/24, under the same lock
RELEASE = {"model": "classifier", "version": 2}
# Each inference host, the compose service that is the host, and the DAGs that reach it.
HOSTS = {
    "infer-1": {"release": "ovcache_release_warmup", "nightly": "ovcache_nightly_verify"},
    "infer-2": {"release": "ovcache_release_by_queue", "nightly": "ovcache_nightly_by_queue"},
    "infer-3": {"release": "ovcache_release_by_queue", "nightly": "ovcache_nightly_by_queue"},
}
EDGE_HOST = "infer-3"  # its own service: an edge worker, the only container of the host
ONE_SHOT = {"airflow-init", "models-init"}
PROJECT_PREFIX = "ovcacheci"  # compose project ovcacheci<run id>; leftovers of killed runs are removed by prefix
NETWORK_LABEL = "io.ovcache.test=docker-stack"
CACHE_DIR = "/var/cache/openvino"
REPORTS_DIR = "/opt/airflow/ovcache-reports"

pytestmark = [pytest.mark.root, pytest.mark.slow]


# --- compose -----------------------------------------------------------------------------------


def _compose_program(engine: Engine) -> list[str]:
    """Compose v2 as a plugin of the engine's client, else the docker-compose program (Debian's 1.29)."""
    if subprocess.run([engine.client, "compose", "version"], capture_output=True).returncode == 0:
        return [engine.client, "compose"]
    program = shutil.which("docker-compose")
    require(program is not None, "no Docker Compose (apt-get install docker-compose)")
    assert program is not None
    return [program]


@dataclass
class Stack:
    engine: Engine
    workdir: Path
    project: str
    api_port: int
    networks: dict[str, str]  # compose network -> engine network
    compose_program: list[str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def env_file(self) -> Path:
        return self.workdir / ".env"

    @property
    def secrets_dir(self) -> Path:
        return self.workdir / "secrets"

    @property
    def override(self) -> Path:
        return self.workdir / "networks.yaml"

    def argv(self, edge: bool = True) -> list[str]:
        """Compose on the stack's files; ``edge=False`` leaves the edge override out (the base images' build)."""
        paths = (*COMPOSE_FILES, *(EDGE_FILES if edge else ()), self.override)
        files = [arg for path in paths for arg in ("-f", str(path))]
        return [
            *self.compose_program,
            "--project-name",
            self.project,
            "--project-directory",
            str(DOCKER),
            *files,
            "--env-file",
            str(self.env_file),
        ]

    def env(self) -> dict[str, str]:
        # compose v1 builds by running `docker build`: the first docker on PATH must be the BuildKit client.
        bin_dir = self.workdir / "bin"
        return self.engine.env(
            {
                "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                "OVCACHE_SECRETS_DIR": str(self.secrets_dir),
                "AIRFLOW_API_PORT": str(self.api_port),
                "COMPOSE_HTTP_TIMEOUT": "300",
            }
        )

    def compose(
        self,
        *args: str,
        timeout: float = 600,
        check: bool = True,
        input: str | None = None,
        nice: bool = False,
        edge: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = [*(["nice", "-n", "10"] if nice else []), *self.argv(edge), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=self.env(), cwd=DOCKER, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"compose {' '.join(args)} failed ({proc.returncode}):\n{_tail(proc.stderr + proc.stdout, 60)}")
        return proc

    def timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def containers(self) -> dict[str, dict[str, Any]]:
        """Service name -> the container's state, for every container of the project."""
        ids = self.engine.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}").stdout.split()
        if not ids:
            return {}
        inspected = json.loads(self.engine.docker("inspect", *ids).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c["State"] for c in inspected}

    def wait_healthy(self, timeout: float = 420) -> None:
        """Every long-running service healthy, every one-shot service exited 0."""
        deadline = time.monotonic() + timeout
        pending: list[str] = []
        while time.monotonic() < deadline:
            pending = []
            for service, state in self.containers().items():
                if service in ONE_SHOT:
                    if state["Status"] == "exited" and state["ExitCode"] != 0:
                        raise AssertionError(f"{service} exited with {state['ExitCode']}:\n{self.logs(service)}")
                    if state["Status"] != "exited":
                        pending.append(f"{service}: {state['Status']}")
                    continue
                health = (state.get("Health") or {}).get("Status", "none")
                if state["Status"] != "running" or health != "healthy":
                    pending.append(f"{service}: {state['Status']}, {health}")
            if not pending:
                return
            time.sleep(5)
        details = "\n\n".join(self.logs(p.split(":")[0]) for p in pending[:3])
        raise AssertionError(f"not healthy after {timeout:.0f} s: {pending}\n{details}")

    def logs(self, service: str, lines: int = 40) -> str:
        out = self.compose("logs", "--no-color", "--tail", str(lines), service, check=False, timeout=60)
        return f"--- {service} ---\n{out.stdout}{out.stderr}"

    def exec(self, service: str, *argv: str, user: str | None = None, input: str | None = None) -> str:
        run = self.compose("exec", "-T", *(["--user", user] if user else []), service, *argv, input=input, timeout=300)
        return run.stdout


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _create_networks(engine: Engine, run_id: str) -> dict[str, str]:
    """The compose files' three networks, each on a /24 no route of this machine overlaps.

    Picked and created under the fleet tier's lock, one after the other: a created
    network's bridge carries its subnet's route, so the next pick (ours or a fleet's) avoids it.
    """
    created: dict[str, str] = {}
    with fleet._locked():
        for network, short in (("control", "ctl"), ("inference", "inf"), ("edge", "edg")):
            subnet = fleet._free_subnet(SUBNET_FIRST_OCTETS)
            gateway = str(next(subnet.hosts()))
            name = f"ovcache-ci-{run_id}-{network}"
            engine.docker(
                "network",
                "create",
                "--driver=bridge",
                f"--subnet={subnet}",
                f"--gateway={gateway}",
                f"--opt=com.docker.network.bridge.name=ovd-{run_id}-{short}",
                f"--label={NETWORK_LABEL}",
                name,
            )
            created[network] = name
    return created


def _remove_networks(engine: Engine, networks: dict[str, str]) -> None:
    for name in networks.values():
        engine.docker("network", "rm", name, check=False)


# --- the Airflow REST API ------------------------------------------------------------------------


class Api:
    """Airflow 3's REST API on the published port, with a token for the admin user."""

    def __init__(self, port: int, user: str, password: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = ""
        self.token = self.call("POST", "/auth/token", {"username": user, "password": password})["access_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {self.token}"} if self.token else {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        if not 200 <= status < 300:
            raise AssertionError(f"{method} {path}: HTTP {status}: {payload.decode(errors='replace')[:2000]}")
        return json.loads(payload) if payload else None

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.call("GET", f"/api/v2/dags/{dag_id}")
                return
            except AssertionError:
                time.sleep(5)
        errors = self.call("GET", "/api/v2/importErrors")
        raise AssertionError(f"DAG {dag_id} was not parsed within {timeout:.0f} s; import errors: {errors}")

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> str:
        self.wait_for_dag(dag_id)
        self.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> None:
        """Until the run ends; a failed run raises with each task's state and the failed tasks' logs."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}"
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            state = self.call("GET", path)["state"]
            if state in ("success", "failed"):
                break
            time.sleep(5)
        if state == "success":
            return
        tasks = self.call("GET", f"{path}/taskInstances?limit=100")["task_instances"]
        lines = [f"{t['task_id']}[{t.get('map_index', -1)}]: {t['state']}" for t in tasks]
        logs = [self.task_log(path, t) for t in tasks if t["state"] in ("failed", "upstream_failed")][:2]
        raise AssertionError(f"{dag_id} run {run_id} ended {state or 'not at all'}:\n" + "\n".join(lines + logs))

    def task_log(self, run_path: str, task: dict[str, Any]) -> str:
        try:
            log = self.call(
                "GET",
                f"{run_path}/taskInstances/{task['task_id']}/logs/{task.get('try_number') or 1}?map_index={task.get('map_index', -1)}",
            )
        except AssertionError as error:
            return f"--- {task['task_id']}: no log ({error})"
        events = [str(e.get("event", "")) if isinstance(e, dict) else str(e) for e in log.get("content", [])]
        return f"--- log of {task['task_id']} ---\n" + "\n".join(events[-40:])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=1000"
        return list(self.call("GET", path)["task_instances"])

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/return_value"
        return self.call("GET", path)["value"]


# --- the stack ----------------------------------------------------------------------------------------


SERVING_COMPILE = textwrap.dedent(
    """
    # A server's compile: plain OpenVINO, by path, on CPU, with the host's cache directory.
    import json, pathlib, sys
    import openvino as ov
    cache, model = pathlib.Path(sys.argv[1]), sys.argv[2]
    before = sorted(p.name for p in cache.glob("*.blob"))
    compiled = ov.Core().compile_model(model, "CPU", {"CACHE_DIR": str(cache)})
    after = sorted(p.name for p in cache.glob("*.blob"))
    print(json.dumps({"before": before, "after": after, "loaded": bool(compiled.get_property("LOADED_FROM_CACHE"))}))
    """
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = engine_prerequisites()
    require(reason is None, reason or "")
    require(shutil.which("debootstrap") is not None, "debootstrap is not installed (apt-get install debootstrap)")
    require(shutil.which("ssh-keygen") is not None, "ssh-keygen is not installed (apt-get install openssh-client)")
    engine = Engine()
    compose_program = _compose_program(engine)
    run_id = secrets.token_hex(3)
    workdir = tmp_path_factory.mktemp("docker-stack")
    (workdir / "bin").mkdir()
    (workdir / "bin" / "docker").symlink_to(engine.client)
    networks: dict[str, str] = {}
    timings = STACK_TIMINGS
    timings.clear()
    started = time.monotonic()
    with exclusive():
        engine.start()
        try:
            engine.remove_leftovers(PROJECT_PREFIX, NETWORK_LABEL)
            networks = _create_networks(engine, run_id)
            api_port = _free_port()
            s = Stack(engine, workdir, f"{PROJECT_PREFIX}{run_id}", api_port, networks, compose_program, timings)
            # The compose file's networks are the ones made above; compose neither creates nor removes them.
            lines = ["networks:", *(f"  {net}:\n    external: true\n    name: {name}" for net, name in networks.items())]
            s.override.write_text("\n".join(lines) + "\n")
            s.timed("engine", started)
            try:
                yield from _bring_up(s)
            finally:
                down = time.monotonic()
                s.compose("down", "--volumes", "--remove-orphans", "--timeout", "30", check=False, timeout=300)
                s.timed("down", down)
                # The data root is kept for the build cache; bound it: the previous builds of our
                # tags, and build cache past a size, go.
                engine.docker("image", "prune", "--force", check=False, timeout=300)
                engine.docker("builder", "prune", "--force", "--keep-storage", "10GB", check=False, timeout=300)
        finally:
            _remove_networks(engine, networks)
            engine.stop()
            timings["total"] = round(time.monotonic() - started, 1)


def _bring_up(s: Stack) -> Iterator[Stack]:
    phase = time.monotonic()
    run = subprocess.run(
        ["bash", str(DOCKER / "scripts" / "bootstrap.sh"), "--env-file", str(s.env_file), "--secrets-dir", str(s.secrets_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr + run.stdout

    run = subprocess.run(
        ["bash", str(DOCKER / "build" / "stand-in-bases.sh")],
        capture_output=True,
        text=True,
        timeout=1800,
        env=s.engine.env({"DOCKER": s.engine.client}),
    )
    assert run.returncode == 0, f"stand-in-bases.sh failed:\n{_tail(run.stderr + run.stdout, 60)}"
    s.timed("stand-in bases", phase)

    phase = time.monotonic()
    s.compose("build", timeout=2400, nice=True, edge=False)
    s.timed("compose build", phase)

    phase = time.monotonic()
    s.compose("build", timeout=1200, nice=True)
    s.timed("compose build, edge", phase)

    phase = time.monotonic()
    s.compose("up", "--detach", timeout=900)
    s.wait_healthy()
    s.timed("up, healthy", phase)

    # infer-1 made its host key on its first start; pin it, then let compose recreate what reads it.
    phase = time.monotonic()
    pin = subprocess.run(
        ["bash", str(DOCKER / "scripts" / "pin-host-keys.sh"), "infer-1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**s.env(), "COMPOSE": shlex.join(s.argv()), "ENV_FILE": str(s.env_file)},
    )
    assert pin.returncode == 0, pin.stderr + pin.stdout
    pinned = read_env_file(s.env_file)["OVCACHE_INFER_1_HOST_KEY"]
    assert pinned.startswith("ssh-ed25519 ")
    s.compose("up", "--detach", timeout=900)
    s.wait_healthy()
    s.timed("pin host key, up again", phase)
    yield s


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    env = read_env_file(stack.env_file)
    return Api(stack.api_port, env["AIRFLOW_ADMIN_USER"], env["AIRFLOW_ADMIN_PASSWORD"])


# --- the tests ---------------------------------------------------------------------------------------------


@pytest.mark.timeout(3600)
def _hosts_of(kind: str) -> dict[str, list[str]]:
    """DAG id -> the hosts one run of it covers (the queue-routed DAGs cover infer-2 and infer-3 at once)."""
    dags: dict[str, list[str]] = {}
    for host, by_kind in HOSTS.items():
        dags.setdefault(by_kind[kind], []).append(host)
    return dags


def test_the_stack_comes_up_with_every_dag_imported(stack: Stack, api: Api) -> None:
    """Every service healthy (the fixture waited for it); the example DAGs parse in the stack's own DAG processor."""
    for dags in HOSTS.values():
        for dag_id in dags.values():
            api.wait_for_dag(dag_id)
    errors = api.call("GET", "/api/v2/importErrors")
    assert errors["total_entries"] == 0, errors
    # The pinned host key is what infer-1 serves, as the SSH connection of the workers sees it.
    served = stack.exec("infer-1", "cat", "/etc/ssh/host-keys/ssh_host_ed25519_key.pub").split()[:2]
    assert " ".join(served) == read_env_file(stack.env_file)["OVCACHE_INFER_1_HOST_KEY"]


@pytest.mark.timeout(600)
def test_the_edge_worker_registers_with_the_api_server_on_its_own_queue(stack: Stack) -> None:
    """infer-3 reaches the API server alone (the edge network) and is listed by the central site's edge CLI."""
    listed = json.loads(stack.exec("airflow-apiserver", "airflow", "edge", "list-workers", "--output", "json"))
    workers = {w["worker_name"]: w for w in listed}
    assert EDGE_HOST in workers, listed
    worker = workers[EDGE_HOST]
    assert worker["state"] in ("idle", "running"), worker
    assert worker["queues"] == [EDGE_HOST], worker
    assert str(worker["concurrency"]) == "1", worker  # the CLI's JSON gives its numbers as strings


@pytest.mark.timeout(1800)
def test_release_warms_each_host_and_a_serving_compile_loads_from_its_cache(stack: Stack, api: Api) -> None:
    phase = time.monotonic()
    runs = {dag_id: api.trigger(dag_id, RELEASE) for dag_id in _hosts_of("release")}
    for dag_id, run_id in runs.items():
        api.wait_for_run(dag_id, run_id)
    stack.timed("release DAGs", phase)

    # The edge host's tasks ran on its own worker, from its queue, through the Edge executor; its
    # bookkeeping task (`outcome`) stays on the default executor, centrally.
    dag_id = HOSTS[EDGE_HOST]["release"]
    tis = api.task_instances(dag_id, runs[dag_id])
    on_edge = [ti for ti in tis if ti["task_id"].startswith(f"{EDGE_HOST}.") and ti["task_id"] != f"{EDGE_HOST}.outcome"]
    assert on_edge, f"{dag_id} has no task for {EDGE_HOST}: {[ti['task_id'] for ti in tis]}"
    for ti in on_edge:
        assert (ti["state"], ti["queue"], ti["hostname"], ti["executor"]) == ("success", EDGE_HOST, EDGE_HOST, "EdgeExecutor"), ti

    model = f"/models/{RELEASE['model']}/{RELEASE['version']}/model.xml"
    for host in HOSTS:
        # As the cache's owner, the way the serving application on the host runs (on infer-3,
        # inside the edge worker's container: the one container of that host here).
        out = stack.exec(host, "/opt/ovcache/bin/python", "-", CACHE_DIR, model, user="ovcache", input=SERVING_COMPILE)
        result = json.loads(out.strip().splitlines()[-1])
        assert result["before"], f"{host}: no blob in its cache volume after the release"
        assert result["loaded"], f"{host}: a serving compile of {model} did not load from the cache: {result}"
        assert result["after"] == result["before"], f"{host}: the serving compile wrote a blob: {result}"


@pytest.mark.timeout(1800)
def test_nightly_verification_reports_every_host_ok(stack: Stack, api: Api) -> None:
    phase = time.monotonic()
    nightly = _hosts_of("nightly")
    runs = {dag_id: api.trigger(dag_id, {}) for dag_id in nightly}
    for dag_id, run_id in runs.items():
        api.wait_for_run(dag_id, run_id)
    stack.timed("nightly DAGs", phase)

    for dag_id, run_id in runs.items():
        paths = api.xcom(dag_id, run_id, "report")
        assert paths["json"].startswith(f"{REPORTS_DIR}/"), paths
        report = json.loads(stack.exec("airflow-worker", "cat", paths["json"]))
        assert report["ok"], report["problems"]
        assert sorted(report["hosts"]) == sorted(nightly[dag_id]), report
        for host in nightly[dag_id]:
            cells = {(c["model"], c["version"], c["device"]): c for c in report["cells"] if c["host"] == host}
            cell = cells.get((RELEASE["model"], RELEASE["version"], "CPU"))
            assert cell is not None, f"{host}: the report has no cell for the release: {report['cells']}"
            assert cell["outcome"] == "ok" and cell["after"] == "ok", cell
            assert cell["load_ms"] is not None, cell
    # The report outlives the container that wrote it: it is in the ovcache-reports volume.
    stack.compose("up", "--detach", "--force-recreate", "--no-deps", "airflow-worker", timeout=600)
    stack.wait_healthy()
    for dag_id, run_id in runs.items():
        path = api.xcom(dag_id, run_id, "report")["json"]
        assert json.loads(stack.exec("airflow-worker", "cat", path))["ok"]
