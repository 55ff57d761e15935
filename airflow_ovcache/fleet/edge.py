"""Hosts served by an Airflow edge worker: what the queue-routed DAGs need beyond a Celery queue host.

An edge host (``executor = "EdgeExecutor"`` in its inventory table or in
``$OVCACHE_QUEUE_HOSTS``) runs ``airflow edge worker --queues <host>``, which
dials out to the API server over HTTP(S) and pulls the tasks of its queue; the
agent then runs on the host through an ``ovcache`` connection with transport
``local``. Nothing reaches into the host, so a host that is switched off, on a
dead link or in maintenance is simply one whose tasks nobody takes: the
scheduler gives up on them after a bounded wait (:func:`queued_bound_seconds`)
and the run names the host as not reached (:func:`not_reached`).

Importing this module is cheap: Airflow's configuration is read only inside the
functions that need it, which run in tasks, never at parse time.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from .. import outcomes
from .inventory import FleetHost

EDGE_EXECUTOR = "EdgeExecutor"
# The scheduler requeues a task stuck in queued this many times before failing it (an undocumented
# Airflow setting, [scheduler] num_stuck_in_queued_retries, default 2).
_STUCK_RETRIES_DEFAULT = 2


def is_edge(host: FleetHost) -> bool:
    """Whether the host's tasks go to Airflow's Edge executor (by alias, class name or import path).

    :param host: an inventory host.
    """
    return bool(host.executor) and str(host.executor).rsplit(".", 1)[-1].split(":")[-1] == EDGE_EXECUTOR


def queued_bound_seconds(timeout: float | None = None, retries: int | None = None, check_interval: float | None = None) -> float:
    """How long a task may wait in its queue before the scheduler fails it: the bound on an offline host.

    ``[scheduler] task_queued_timeout`` per attempt, ``num_stuck_in_queued_retries``
    requeues after the first, and up to one ``task_queued_timeout_check_interval``
    of lateness each time. Arguments left out are read from Airflow's configuration.

    :param timeout: ``task_queued_timeout`` in seconds.
    :param retries: ``num_stuck_in_queued_retries``.
    :param check_interval: ``task_queued_timeout_check_interval`` in seconds.
    """
    if timeout is None or retries is None or check_interval is None:
        from airflow.configuration import conf

        timeout = conf.getfloat("scheduler", "task_queued_timeout") if timeout is None else timeout
        retries = (
            conf.getint("scheduler", "num_stuck_in_queued_retries", fallback=_STUCK_RETRIES_DEFAULT)
            if retries is None
            else retries
        )
        check_interval = (
            conf.getfloat("scheduler", "task_queued_timeout_check_interval") if check_interval is None else check_interval
        )
    return (timeout + check_interval) * (retries + 1)


def not_reached(host: FleetHost, step: str, bound_seconds: float | None = None) -> dict[str, Any]:
    """The outcome fields of a host whose worker never reported on ``step``: not reached, and what to do.

    Without a record the host's task either was never taken from its queue
    (worker stopped, offline, in maintenance) or died with its worker; the
    outcome says which worker to look at and that the host catches up on a
    retry of its tasks or on the next run, which re-queue it.

    :param host: the inventory host.
    :param step: the host's task that was not taken (``warm``, ``verify``...).
    :param bound_seconds: the wait bound to name; default from Airflow's configuration.
    """
    try:
        bound = queued_bound_seconds() if bound_seconds is None else bound_seconds
        within = f" within about {bound:.0f} s"
    except Exception:  # noqa: BLE001 - the hint must not hide the outcome itself
        within = ""
    if is_edge(host):
        who = f"no edge worker took the host's {step} task from queue {host.queue}{within}"
        check = (
            f"is `airflow edge worker --queues {host.queue}` running on the host, reaching the API server, "
            "and out of maintenance? see `airflow edge list-workers` or Admin > Edge Executor"
        )
    else:
        who = f"no worker took the host's {step} task from queue {host.queue}{within}"
        check = f"is a worker listening on queue {host.queue}?"
    return {
        "reason": f"not reached: {who}, or its worker died running it ({check}); the host catches up on a retry or the next run",
        "failure_kind": outcomes.CANNOT_CONNECT,
        "not_reached": True,
    }


@dataclass(frozen=True)
class EdgeWorkerSpec:
    """How one edge worker is started on its host.

    :param host: the host's name, the worker's ``--edge-hostname``.
    :param queue: the queue its tasks are sent to.
    :param concurrency: task slots; 1 keeps one compile at a time beside the server.
    :param airflow: the ``airflow`` command on the host.
    """

    host: str
    queue: str
    concurrency: int = 1
    airflow: str = "airflow"

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"host {self.host}: edge worker concurrency must be at least 1, not {self.concurrency}")


def edge_worker_argv(spec: EdgeWorkerSpec) -> list[str]:
    """``airflow edge worker`` for one host: its own queue, named after the host, ``concurrency`` task slots.

    Concurrency 1 is the safe default: one compile at a time beside the serving
    application, and one writer per cache directory.

    :param spec: the worker's host, queue, concurrency and ``airflow`` command.
    """
    return [
        spec.airflow,
        "edge",
        "worker",
        "--queues",
        spec.queue,
        "--edge-hostname",
        spec.host,
        "--concurrency",
        str(spec.concurrency),
    ]


def edge_worker_command(spec: EdgeWorkerSpec) -> str:
    """:func:`edge_worker_argv` as one shell line (a systemd ``ExecStart``, a compose ``command``).

    :param spec: the worker's host, queue, concurrency and ``airflow`` command.
    """
    return shlex.join(edge_worker_argv(spec))
