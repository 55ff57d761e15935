"""Nightly verification: prove every host's cache holds valid blobs of the deployed models, repair what drifted.

Every night (a cron schedule in a pendulum timezone of your choice), for every
host in the fleet inventory, in its own mapped task group:

1. ``rewarm``: verify each managed blob with a load check (a compile following
   its serving profile, in a fresh process), rebuild what a warm can fix (a
   missing, corrupt, stale or foreign blob, one that compile would not load)
   from the model folder and cache spec recorded with it, and verify again;
2. record the host's outcome (or that it could not be reached).

Then one report: an HTML page of hosts x models (status, blob size, load time,
what was repaired and why, and whether the server read the blob: "served from
cache", the evidence from the server's side; orphans a server compiled after a
warm-up are listed for a person) and the same data as JSON, in
``$OVCACHE_REPORT_DIR`` (default ``$AIRFLOW_HOME/ovcache-reports``). The run
fails if anything could not be repaired or a host could not be reached, and
the failure names each one; the report says where the page is.

Copy this file and edit the settings below (environment variables at parse
time; nothing else is read while parsing).
"""

from __future__ import annotations

import logging
import os

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, TriggerRule, dag, get_current_context, task, task_group

from airflow_ovcache.operators.rewarm import OvcacheRewarmOperator
from airflow_ovcache.plugins.links import with_report_link

log = logging.getLogger(__name__)

# When: a cron expression in a named timezone (pendulum names, e.g. "Europe/Berlin").
NIGHTLY_CRON = os.environ.get("OVCACHE_NIGHTLY_CRON", "30 2 * * *")
NIGHTLY_TIMEZONE = pendulum.timezone(os.environ.get("OVCACHE_NIGHTLY_TIMEZONE", "UTC"))


@dag(
    dag_id="ovcache_nightly_verify",
    schedule=CronTriggerTimetable(NIGHTLY_CRON, timezone=NIGHTLY_TIMEZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=NIGHTLY_TIMEZONE),
    catchup=False,
    max_active_runs=1,
    tags=["ovcache", "openvino"],
    doc_md=__doc__,
    params={
        "hosts": Param(
            None, type=["null", "array"], items={"type": "string"}, description="only these inventory hosts (empty: all)"
        ),
        "labels": Param(
            None, type=["null", "array"], items={"type": "string"}, description="only hosts with all of these labels (empty: any)"
        ),
        "load_check": Param(True, type="boolean", description="verify with a load from cache in a fresh process"),
    },
)
def ovcache_nightly_verify() -> None:
    @task
    def targets() -> list[dict]:
        from airflow_ovcache.fleet.runs import host_kwargs, hosts_for_run, inventory

        params = get_current_context()["params"]
        hosts = hosts_for_run(inventory(), params)
        return [
            {k: v for k, v in host_kwargs(h).items() if k in ("host", "conn_id", "cache_dir")}
            | {"load_check": params["load_check"]}
            for h in hosts
        ]

    @task_group
    def on_host(host: str, conn_id: str, cache_dir: str, load_check: bool) -> None:
        repair = OvcacheRewarmOperator(
            task_id="rewarm",
            ovcache_conn_id=conn_id,
            host_name=host,
            cache_dir=cache_dir,
            load_check=load_check,
            # The report decides what fails the run; this task fails only if the host
            # cannot be reached or the agent cannot run.
            fail_on_unrepaired=False,
        )

        @task(trigger_rule=TriggerRule.ALL_DONE, map_index_template="{{ task.op_kwargs['host'] }}")
        def outcome(host: str) -> dict:
            from airflow_ovcache.fleet.runs import step_records

            records = step_records(get_current_context()["ti"], "on_host", ["rewarm"])["rewarm"]
            if records["result"] is not None:
                return {"host": host, **records["result"]}
            error = records["error"] or {}
            reason = error.get("message") or "rewarm did not finish (see its log)"
            return {"host": host, "error": reason, "error_kind": error.get("kind") or "task"}

        repair >> outcome(host=host)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def report() -> dict:
        """Write the HTML and JSON report; fail the run, naming each problem, if any remain."""
        from airflow_ovcache.fleet.report import build_report, write_report
        from airflow_ovcache.fleet.report_store import run_stamp, stem_for_run
        from airflow_ovcache.fleet.runs import RunFailed, mapped_results, report_dir

        context = get_current_context()
        ti = context["ti"]
        planned = ti.xcom_pull(task_ids="targets")
        if planned is None:
            raise RunFailed("no host was planned: the targets task failed (see its log; is the inventory readable?)")
        results = [
            got if got is not None else {"host": target["host"], "error": "no outcome recorded"}
            for target, got in zip(planned, mapped_results(ti, "on_host.outcome", len(planned)), strict=True)
        ]
        fleet_report = build_report(results)
        # Stamped with its DAG run, under a safe name (a manual run's id holds ':' and '+').
        fleet_report.run = run_stamp(context)
        paths = write_report(fleet_report, report_dir(), stem_for_run("nightly", fleet_report.run))
        write_report(fleet_report, report_dir(), "latest")
        counts = fleet_report.counts()
        log.info("%s", f"nightly verification: {counts}")
        log.info("%s", f"report: {paths['html']} (JSON: {paths['json']})")
        for line in fleet_report.problems() + fleet_report.server_compiled_lines():
            log.warning("needs a person: %s", line)
        if not fleet_report.ok:
            problems = fleet_report.problems()
            raise RunFailed(f"{len(problems)} problem(s) left after repair (report: {paths['html']}): " + "; ".join(problems))
        return {"counts": counts, **paths}

    # The "Fleet report" button on the report task opens this run's report in the UI plugin.
    on_host.expand_kwargs(targets()) >> with_report_link(report())


nightly_verify = ovcache_nightly_verify()
