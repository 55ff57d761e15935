"""A real Airflow for the provider tests: SQLite metadata database, DAG files in the dags folder.

Airflow reads its configuration when it is first imported, so the temporary
``AIRFLOW_HOME`` is set up here, at import time, before any test module
imports Airflow. The test DAGs live in ``tests/provider/dags`` and are copied
into the configured dags folder: ``dag.test()`` re-parses the DAG from its
bundle, so they must be real files there.

Hosts are ``ovcache`` connections given as ``AIRFLOW_CONN_<ID>`` environment
variables (``ovcache_conn`` fixture), each pointing at a per-test cache
directory and the test's model repository; the agent runs for real.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.infra.sshd import SshServer, find_sshd

_HOME = Path(tempfile.mkdtemp(prefix="ovcache-airflow-"))
atexit.register(shutil.rmtree, _HOME, True)
DAGS_SOURCE = Path(__file__).parent / "dags"
DAGS_FOLDER = _HOME / "dags"

os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS"] = "True"
# Asset-scheduled test DAGs must be queued by asset events, which skips paused DAGs.
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ.pop("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", None)

if "airflow.configuration" in sys.modules:  # pragma: no cover - a guard, not a feature
    raise RuntimeError("Airflow was imported before tests/provider/conftest.py could point it at a test AIRFLOW_HOME")


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the metadata database once, and put the test DAG files in the dags folder."""
    DAGS_FOLDER.mkdir(parents=True, exist_ok=True)
    for source in DAGS_SOURCE.glob("*.py"):
        shutil.copy2(source, DAGS_FOLDER / source.name)
    from airflow.utils import db

    db.initdb()
    return _HOME


def load_dag(name: str, attr: str = "dag") -> Any:
    """The DAG object ``attr`` defined in ``dags/<name>.py``, imported from the dags folder."""
    path = DAGS_FOLDER / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"ovcache_test_dag_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, attr)


@dataclass
class TaskResult:
    task_id: str
    map_index: int
    state: str | None
    xcom: Any
    label: str | None = None  # the rendered map index, as the UI shows a mapped instance


@dataclass
class DagResult:
    state: str
    run_id: str
    tasks: list[TaskResult]

    def task(self, task_id: str, map_index: int = -1) -> TaskResult:
        for t in self.tasks:
            if t.task_id == task_id and t.map_index == map_index:
                return t
        raise KeyError(f"no task instance {task_id}[{map_index}] in {[(t.task_id, t.map_index) for t in self.tasks]}")

    def mapped(self, task_id: str) -> list[TaskResult]:
        return sorted((t for t in self.tasks if t.task_id == task_id), key=lambda t: t.map_index)


def run_dag(dag: Any, conf: dict[str, Any] | None = None) -> DagResult:
    """``dag.test()`` on the SQLite database; returns every task instance's state and XCom."""
    return _collect(dag, dag.test(run_conf=conf))


def run_asset_triggered(dag: Any) -> DagResult:
    """Create the run an asset event queued for ``dag``, as the scheduler does, and run its tasks.

    ``dag.test()`` only makes manual runs, which consume no asset events. This
    calls the scheduler's own run-creation step (a private method: the public
    way is a running scheduler) and then drives the tasks the way ``dag.test()``
    does, with the same private helper it uses.
    """
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    with create_session() as session:
        known = set(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag.dag_id)))
        runner = SchedulerJobRunner(job=Job())
        dag_model = session.scalar(select(DagModel).where(DagModel.dag_id == dag.dag_id))
        assert dag_model is not None, f"{dag.dag_id} is not in the database; run a dag.test() first to sync the bundle"
        runner._create_dag_runs_asset_triggered(dag_models=[dag_model], session=session)
        session.commit()
        runs = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.run_type == DagRunType.ASSET_TRIGGERED)
        ).all()
        new = [r for r in runs if r.run_id not in known]
        assert len(new) == 1, f"expected one new asset-triggered run of {dag.dag_id}, got {len(new)}"
        dr = new[0]
        dr.dag = SerializedDagModel.get(dag.dag_id, session=session).dag
        dr.state = DagRunState.RUNNING
        session.commit()
        idle = 0
        while dr.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dr.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            scheduled = [ti for ti in dr.get_task_instances(session=session) if ti.state == TaskInstanceState.SCHEDULED]
            for ti in scheduled:
                _run_task(ti=ti, task=dag.task_dict[ti.task_id], run_triggerer=True)
            if not scheduled and not schedulable:
                # Expanding a mapped group can take a round with nothing to schedule (an empty group is
                # skipped, then what waits on it becomes schedulable): stop only after a few idle rounds.
                idle += 1
                session.expire_all()
                dr.update_state(session=session)
                session.commit()
                if idle >= 5:
                    break
            else:
                idle = 0
        return _collect(dag, dr)


def _collect(dag: Any, dr: Any) -> DagResult:
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    tasks = []
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == dag.dag_id, TaskInstance.run_id == dr.run_id)
        ).all()
        for ti in tis:
            row = session.scalars(
                XComModel.get_many(
                    run_id=dr.run_id, key="return_value", task_ids=ti.task_id, dag_ids=dag.dag_id, map_indexes=ti.map_index
                )
            ).first()
            value = XComModel.deserialize_value(row) if row is not None else None
            tasks.append(TaskResult(ti.task_id, ti.map_index, str(ti.state) if ti.state else None, value, ti.rendered_map_index))
        state = session.scalar(select(DagRun.state).where(DagRun.dag_id == dag.dag_id, DagRun.run_id == dr.run_id))
    return DagResult(str(state), dr.run_id, tasks)


def failure_lines(text: str, marker: str = "airflow_ovcache.hooks.errors.") -> list[str]:
    """The one-line task failures our errors print into a task's log."""
    return [line[line.index(marker) + len(marker) :] for line in text.splitlines() if marker in line]


@pytest.fixture
def ovcache_conn(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Define an ``ovcache`` connection for this test: ``ovcache_conn("ovc_host_a", host=..., cache_dir=...)``."""

    def define(conn_id: str, host: str | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"conn_type": "ovcache", "extra": {k: str(v) for k, v in extra.items() if v is not None}}
        if host:
            body["host"] = host
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(body))
        return conn_id

    return define


@pytest.fixture
def local_hosts(ovcache_conn, repo: Path, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Two local hosts, ``ovc_host_a`` and ``ovc_host_b``, sharing the test repository, each with its own cache."""
    caches = {}
    for name in ("a", "b"):
        cache = tmp_path / f"cache-{name}"
        ovcache_conn(f"ovc_host_{name}", host=f"host-{name}", cache_dir=cache, repository=repo)
        caches[f"host-{name}"] = cache
    return caches


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A real sshd on 127.0.0.1 with a generated host key and client key (needs openssh-server)."""
    require(find_sshd() is not None, "sshd is not installed (apt-get install -y openssh-server)")
    server = SshServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


AGENT_OVER_SSH = f"{sys.executable} -m airflow_ovcache.cli.main"
