"""Edge hosts in the inventory and the queue-routing setting, and the edge worker's command line."""

from __future__ import annotations

import pytest

from airflow_ovcache.fleet.edge import (
    EdgeWorkerSpec,
    edge_worker_argv,
    edge_worker_command,
    is_edge,
    not_reached,
    queued_bound_seconds,
)
from airflow_ovcache.fleet.inventory import parse_fleet
from airflow_ovcache.fleet.queues import parse_queue_hosts

DEFAULTS = {"cache_dir": "/var/cache/openvino", "repository": "/models"}


def test_an_inventory_host_with_an_executor_is_routed_by_its_own_queue() -> None:
    """Regression: an edge host without a queue would be warmed over SSH by the SSH DAGs."""
    fleet = parse_fleet({"defaults": DEFAULTS, "hosts": [{"name": "shop-17", "executor": "EdgeExecutor"}, {"name": "infer-1"}]})
    edge, ssh = fleet.hosts
    assert (edge.queue, edge.executor, is_edge(edge)) == ("shop-17", "EdgeExecutor", True)
    assert (ssh.queue, ssh.executor, is_edge(ssh)) == (None, None, False)


def test_queue_hosts_mix_celery_and_edge_hosts() -> None:
    hosts = parse_queue_hosts(
        '[{"name": "infer-2"}, {"name": "shop-17", "executor": "airflow.providers.edge3.executors.EdgeExecutor", "queue": "edge-17"}]',
        defaults=DEFAULTS,
    )
    assert [(h.name, h.queue, is_edge(h)) for h in hosts] == [("infer-2", "infer-2", False), ("shop-17", "edge-17", True)]


def test_executor_must_be_a_string() -> None:
    with pytest.raises(Exception, match="host shop-17: executor must be a string"):
        parse_fleet({"defaults": DEFAULTS, "hosts": [{"name": "shop-17", "executor": 3}]})


def test_not_reached_names_the_edge_worker_to_check_and_the_bound() -> None:
    edge = parse_fleet({"defaults": DEFAULTS, "hosts": [{"name": "shop-17", "executor": "EdgeExecutor"}]}).hosts[0]
    got = not_reached(edge, "wait_for_version", bound_seconds=1860)
    assert got["failure_kind"] == "cannot-connect" and got["not_reached"] is True
    assert got["reason"].startswith(
        "not reached: no edge worker took the host's wait_for_version task from queue shop-17 within about 1860 s"
    )
    assert "airflow edge worker --queues shop-17" in got["reason"] and "retry or the next run" in got["reason"]
    celery = parse_queue_hosts("infer-2", defaults=DEFAULTS)[0]
    assert "is a worker listening on queue infer-2?" in not_reached(celery, "warm", bound_seconds=10)["reason"]


def test_the_bound_counts_every_requeue_and_the_check_interval() -> None:
    assert queued_bound_seconds(600, 2, 120) == 2160
    assert queued_bound_seconds(12, 0, 2) == 14


def test_edge_worker_command_line() -> None:
    spec = EdgeWorkerSpec(host="shop-17", queue="shop-17")
    assert edge_worker_argv(spec) == [
        "airflow",
        "edge",
        "worker",
        "--queues",
        "shop-17",
        "--edge-hostname",
        "shop-17",
        "--concurrency",
        "1",
    ]
    assert edge_worker_command(EdgeWorkerSpec("a b", "q", 2, "/opt/venv/bin/airflow")).startswith(
        "/opt/venv/bin/airflow edge worker --queues q --edge-hostname 'a b'"
    )
    with pytest.raises(ValueError, match="host shop-17: edge worker concurrency must be at least 1"):
        EdgeWorkerSpec("shop-17", "shop-17", 0)
