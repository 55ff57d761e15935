"""Nightly verification routed by queue: each inference host repairs its own cache on its own worker.

The same job as ``ovcache_nightly_verify`` for hosts that run their own Airflow
worker (see ``ovcache_release_by_queue``): on each host's queue, ``rewarm``
verifies every managed blob with a load check (a compile following its profile,
in a fresh process), rebuilds
what drifted and verifies again; on the default queue, one report (HTML and
JSON, in ``$OVCACHE_REPORT_DIR``) over all hosts. The run fails if anything
is left unrepaired or a host's worker did not answer, naming each one.

Hosts come from ``OVCACHE_QUEUE_HOSTS`` (read at parse time, the same setting
as ``ovcache_release_by_queue``); the schedule from ``OVCACHE_NIGHTLY_CRON`` in
``OVCACHE_NIGHTLY_TIMEZONE``, as in ``ovcache_nightly_verify``.
"""

from __future__ import annotations

import logging
import os

import pendulum
from airflow.sdk import CronTriggerTimetable, TaskGroup, TriggerRule, dag, get_current_context, task

from airflow_ovcache import outcomes
from airflow_ovcache.fleet.queues import QUEUE_HOSTS_ENV, host_group_id, parse_queue_hosts
from airflow_ovcache.operators.rewarm import OvcacheRewarmOperator
from airflow_ovcache.plugins.links import with_report_link

log = logging.getLogger(__name__)

NIGHTLY_CRON = os.environ.get("OVCACHE_NIGHTLY_CRON", "30 2 * * *")
NIGHTLY_TIMEZONE = pendulum.timezone(os.environ.get("OVCACHE_NIGHTLY_TIMEZONE", "UTC"))
HOSTS = parse_queue_hosts(
    os.environ.get(QUEUE_HOSTS_ENV, ""),
    defaults={
        "cache_dir": os.environ.get("OVCACHE_QUEUE_CACHE_DIR", "/var/cache/openvino"),
        "repository": os.environ.get("OVCACHE_QUEUE_REPOSITORY", "/models"),
        "conn_id": os.environ.get("OVCACHE_QUEUE_CONN_ID", ""),
    },
)


@dag(
    dag_id="ovcache_nightly_by_queue",
    schedule=CronTriggerTimetable(NIGHTLY_CRON, timezone=NIGHTLY_TIMEZONE) if HOSTS else None,
    # Without hosts at parse time the DAG has no schedule: say why where the schedule would show.
    description=None if HOSTS else f"no hosts: set ${QUEUE_HOSTS_ENV} for the DAG processor and the workers",
    start_date=pendulum.datetime(2026, 1, 1, tz=NIGHTLY_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["ovcache", "openvino", "queue-routed"],
    doc_md=__doc__,
)
def ovcache_nightly_by_queue() -> None:
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict:
        """One report over every host; fails the run, naming each problem, if any remain."""
        from airflow_ovcache.fleet.edge import not_reached
        from airflow_ovcache.fleet.report import build_report, write_report
        from airflow_ovcache.fleet.report_store import run_stamp, stem_for_run
        from airflow_ovcache.fleet.runs import RunFailed, report_dir, step_records

        if not HOSTS:
            raise RunFailed(f"no hosts: set ${QUEUE_HOSTS_ENV} for every Airflow component")
        context = get_current_context()
        results = []
        for host in HOSTS:
            record = step_records(context["ti"], host_group_id(host.name), ["rewarm"])["rewarm"]
            if record["result"] is not None:
                results.append({"host": host.name, **record["result"]})
            else:
                # no record: no worker took the task (an edge host offline or in maintenance) or it died running it
                why = record["error"]["message"] if record["error"] else not_reached(host, "rewarm")["reason"]
                kind = record["error"].get("kind") if record["error"] else outcomes.CANNOT_CONNECT  # no worker took it
                results.append({"host": host.name, "error": why, "error_kind": kind or "task"})
        fleet_report = build_report(results)
        fleet_report.run = run_stamp(context)
        paths = write_report(fleet_report, report_dir(), stem_for_run("nightly-by-queue", fleet_report.run))
        write_report(fleet_report, report_dir(), "latest-by-queue")
        log.info("%s", f"nightly verification: {fleet_report.counts()}")
        log.info("%s", f"report: {paths['html']} (JSON: {paths['json']})")
        if not fleet_report.ok:
            problems = fleet_report.problems()
            raise RunFailed(f"{len(problems)} problem(s) left after repair (report: {paths['html']}): " + "; ".join(problems))
        return {"counts": fleet_report.counts(), **paths}

    done = with_report_link(report())  # the "Fleet report" button: this run's report in the UI plugin
    for host in HOSTS:
        with TaskGroup(host_group_id(host.name), tooltip=f"host {host.name}, queue {host.queue}"):
            repair = OvcacheRewarmOperator(
                task_id="rewarm",
                ovcache_conn_id=host.conn_id,
                host_name=host.name,
                cache_dir=host.cache_dir,
                queue=host.queue,
                executor=host.executor,  # an edge host's tasks go to the Edge executor (docs/edge-hosts.md)
                load_check=True,
                # the report decides what fails the run
                fail_on_unrepaired=False,
            )
        repair >> done


nightly_by_queue = ovcache_nightly_by_queue()
