"""One Airflow with the Edge executor and two edge hosts for the whole tier (it takes a minute to start)."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require, usable_by_others
from tests.distributed.cluster import postgres_reachable
from tests.edge.stack import EdgeFleet, EdgeStack
from tests.infra.fleet import fleet_prerequisites

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = [ROOT / "dags" / "ovcache_release_by_queue.py", ROOT / "dags" / "ovcache_nightly_by_queue.py"]
RELEASE_DAG = "ovcache_release_by_queue"
NIGHTLY_DAG = "ovcache_nightly_by_queue"
TIMINGS: dict[str, float] = {}


def _prerequisites() -> None:
    require(
        importlib.util.find_spec("airflow.providers.edge3") is not None,
        "apache-airflow-providers-edge3 is not installed (pip install -e '.[edge]')",
    )
    require(importlib.util.find_spec("psycopg2") is not None, "psycopg2 is not installed (pip install -e '.[celery]')")
    why = fleet_prerequisites()
    require(why is None or "sshd" in why, why or "")  # edge hosts run no sshd
    require(
        shutil.which("iptables") is not None,
        "the edge tier needs iptables for the hosts' firewalls (apt-get install -y iptables)",
    )
    require(
        postgres_reachable(),
        "PostgreSQL is not reachable with $OVCACHE_TEST_PG (default: 127.0.0.1:5432 as user postgres; .ci/run starts it)",
    )


def _terminated(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}: stopping the edge stack")


@pytest.fixture(scope="module")
def edge_stack() -> Iterator[EdgeStack]:
    _prerequisites()
    began = time.monotonic()
    # Outside pytest's private (0700) folders: the edge workers run as the cache's owner, not root.
    root = Path(tempfile.mkdtemp(prefix="ovcache-edge-"))
    root.chmod(0o755)
    others = usable_by_others()
    others.__enter__()
    previous = signal.signal(signal.SIGTERM, _terminated)
    fleet = EdgeFleet(2, root / "hosts", prefix="ove-")
    stack = EdgeStack(root, fleet, DAG_FILES)
    failed = False
    try:
        fleet.start()
        stack.prepare()
        TIMINGS["database"] = time.monotonic() - began
        stack.start()
        stack.login()
        stack.wait_for("the release DAG to be parsed", lambda: stack.request("GET", f"/api/v2/dags/{RELEASE_DAG}"), timeout=180)
        stack.request("PATCH", f"/api/v2/dags/{RELEASE_DAG}", {"is_paused": False})
        names = {h.name for h in fleet}

        def idle() -> bool:
            workers = stack.edge_workers()
            return names <= set(workers) and all(workers[n]["state"] == "idle" for n in names)

        stack.wait_for("both edge workers to register and be idle", idle, timeout=180)
        TIMINGS["stack up"] = time.monotonic() - began
        yield stack
    except BaseException:
        failed = True
        raise
    finally:
        if failed:
            print(stack.diagnostics(), file=sys.stderr)
        problems = stack.destroy()
        fleet_problems = fleet.stop(raise_errors=False)
        signal.signal(signal.SIGTERM, previous)
        others.__exit__(None, None, None)
        shutil.rmtree(root, ignore_errors=True)
        TIMINGS["torn down"] = time.monotonic() - began
        print("edge tier timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items()), file=sys.stderr)
        assert not problems and not fleet_problems, [*problems, *fleet_problems]
