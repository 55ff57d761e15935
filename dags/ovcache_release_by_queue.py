"""Release warm-up routed by queue: each inference host runs its own Airflow worker.

The same job as ``ovcache_release_warmup`` (wait for the version, check the
devices, warm with a confirmation by a compile following the profile, verify with a load check, only
then invalidate, one outcome per host and a summary naming every failure), for
hosts that are not reached over SSH: each runs a Celery worker that listens to
its own queue, and every task that touches a host is sent to that host's queue
(``queue=<host>``). The agent runs on the worker itself, through an ``ovcache``
connection with transport ``local``: the worker is the host.

``queue`` is fixed when this file is parsed, so the hosts are listed in the
environment (``OVCACHE_QUEUE_HOSTS``), not read from the inventory at run time;
give every Airflow component the same value (the workers parse this file too).
Each host gets its own task group, mapped over the releases of the run:

``targets.<host>``
    which releases this host gets in this run (on the default queue, so a host
    left out by the ``hosts``/``labels`` params, or whose worker is down, never blocks it);
``<host>.wait_for_version``
    the version folder has landed in the host's repository (a deferrable sensor
    when ``[triggerer] queues_enabled`` is on and each host runs a triggerer with
    ``--queues <host>``; otherwise it pokes on the host's worker in reschedule mode);
``<host>.check_devices``, ``.warm``, ``.verify``, ``.invalidate``
    as in the SSH DAG, on the host's queue; each host's cache is emitted as an
    ``ovcache://<host>/<model>`` asset event through the ``ovcache-host-caches`` alias;
``<host>.outcome``
    what happened on the host (on the default queue: it only reads XCom).

Hosts that name a **store** (a blob store directory; hosts giving the same path share it, one
mount at that path on each) compile a release once per store: its builders (hosts marked
``builder``, one per hardware class, else the first host listed with that store) warm and put
what they compiled into the store; every other host of the store waits in
``<host>.builders_done`` (default queue) until the builders' warm tasks have ended, however they
ended, then installs from the store and proves the load in a fresh process (a host whose class no
builder has, or whose install check fails, compiles for itself and its summary line says why).
``lean`` and ``store_relay`` are for the SSH release (``ovcache_release_warmup``); a host that
sets them here is refused when the file is parsed, in one line naming it.

Started by the model-release assets (``ovmodel://<repository>/<model>``, with
``{"version": N}`` in the event's extra) or by hand with params ``model`` and
``version``. Settings (environment variables, read at parse time only):

``OVCACHE_QUEUE_HOSTS``
    ``infer-1:/var/cache/openvino:/models,infer-2`` (``name[:cache_dir[:repository]]``)
    or a JSON list of inventory host tables; the queue is the host's name unless given.
``OVCACHE_QUEUE_CACHE_DIR`` / ``_REPOSITORY`` / ``_DEVICES`` / ``_RETAIN`` / ``_CONN_ID``
    defaults for hosts that do not say (``/var/cache/openvino``, ``/models``,
    ``CPU``, ``latest:2``, and ``ovcache_<host>`` as in the inventory).
``OVCACHE_QUEUE_DEFERRABLE``
    ``auto`` (default: deferrable if ``[triggerer] queues_enabled``), ``true`` or ``false``.
``OVCACHE_WAIT_POKE_SECONDS``
    how often the version sensor looks (default 30).
``OVCACHE_REPOSITORY_NAME``, ``OVCACHE_RELEASE_MODELS``, ``OVCACHE_WAIT_FOR_VERSION_SECONDS``
    as in ``ovcache_release_warmup``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pendulum
from airflow.sdk import (
    AssetAlias,
    AssetAny,
    Param,
    TaskGroup,
    TriggerRule,
    XComArg,
    conf,
    dag,
    get_current_context,
    task,
    task_group,
)

from airflow_ovcache.assets import model_release
from airflow_ovcache.fleet.inventory import FleetHost
from airflow_ovcache.fleet.queues import (
    QUEUE_HOSTS_ENV,
    host_group_id,
    parse_queue_hosts,
    refuse_unread_keys,
    store_builders,
)
from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator
from airflow_ovcache.sensors.model_version import OvcacheModelVersionSensor

log = logging.getLogger(__name__)

REPOSITORY_NAME = os.environ.get("OVCACHE_REPOSITORY_NAME", "models")
RELEASE_MODELS = [m.strip() for m in os.environ.get("OVCACHE_RELEASE_MODELS", "classifier,detector").split(",") if m.strip()]
WAIT_FOR_VERSION_SECONDS = float(os.environ.get("OVCACHE_WAIT_FOR_VERSION_SECONDS", "3600"))
WAIT_POKE_SECONDS = float(os.environ.get("OVCACHE_WAIT_POKE_SECONDS", "30"))
HOSTS = parse_queue_hosts(
    os.environ.get(QUEUE_HOSTS_ENV, ""),
    defaults={
        "cache_dir": os.environ.get("OVCACHE_QUEUE_CACHE_DIR", "/var/cache/openvino"),
        "repository": os.environ.get("OVCACHE_QUEUE_REPOSITORY", "/models"),
        "devices": [d.strip() for d in os.environ.get("OVCACHE_QUEUE_DEVICES", "CPU").split(",") if d.strip()],
        "retain": os.environ.get("OVCACHE_QUEUE_RETAIN", "latest:2"),
        "conn_id": os.environ.get("OVCACHE_QUEUE_CONN_ID", ""),
    },
)
refuse_unread_keys(HOSTS)
# For each host with a store: the builders whose warm-ups it waits for (none: it is a builder).
WAITS_FOR = store_builders(HOSTS)
# A deferred sensor's trigger runs in a triggerer. Only with triggerer queues is that
# triggerer on the host; otherwise wait on the host's own worker, in reschedule mode.
_DEFERRABLE = os.environ.get("OVCACHE_QUEUE_DEFERRABLE", "auto").strip().lower()
DEFERRABLE = (
    conf.getboolean("triggerer", "queues_enabled", fallback=False)
    if _DEFERRABLE == "auto"
    else _DEFERRABLE in ("1", "true", "yes")
)

RELEASES = [model_release(REPOSITORY_NAME, model) for model in RELEASE_MODELS]
HOST_CACHES = AssetAlias("ovcache-host-caches")
STEPS = ["wait_for_version", "check_devices", "warm", "verify", "invalidate"]


@dag(
    dag_id="ovcache_release_by_queue",
    # without hosts, releases do not start it (a manual run says what to set)
    schedule=AssetAny(*RELEASES) if HOSTS else None,
    # Without hosts at parse time the DAG has no schedule: say why where the schedule would show.
    description=None if HOSTS else f"no hosts: set ${QUEUE_HOSTS_ENV} for the DAG processor and the workers",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["ovcache", "openvino", "queue-routed"],
    doc_md=__doc__,
    params={
        "model": Param(None, type=["null", "string"], enum=[None, *RELEASE_MODELS], description="model to warm (manual runs)"),
        "version": Param(None, type=["null", "integer"], minimum=1, description="version to warm (manual runs)"),
        "hosts": Param(None, type=["null", "array"], items={"type": "string"}, description="only these hosts (empty: all)"),
        "labels": Param(
            None, type=["null", "array"], items={"type": "string"}, description="only hosts with all of these labels (empty: any)"
        ),
    },
)
def ovcache_release_by_queue() -> None:
    @task
    def releases() -> list[dict]:
        """The (model, version) pairs of this run, and a check of the run's host selection."""
        from airflow_ovcache.fleet.inventory import Fleet
        from airflow_ovcache.fleet.runs import releases_of_run

        context = get_current_context()
        params = context["params"]
        if not HOSTS:
            raise ValueError(f"no hosts: set ${QUEUE_HOSTS_ENV} for every Airflow component (see the DAG's docs)")
        if not Fleet(HOSTS, f"${QUEUE_HOSTS_ENV}").select(params.get("hosts") or None, params.get("labels") or None):
            raise ValueError("no host matches the run's hosts and labels")
        found = releases_of_run(context.get("triggering_asset_events"), params, RELEASE_MODELS)
        log.info("%s", "releases in this run: " + ", ".join(f"{r['model']} version {r['version']}" for r in found))
        return found

    @task
    def pick(releases: list[dict], host: str) -> list[dict]:
        """This host's share of the run: every release, or none if the params leave it out."""
        from airflow_ovcache.fleet.inventory import Fleet

        params = get_current_context()["params"]
        chosen = {h.name for h in Fleet(HOSTS).select(params.get("hosts") or None, params.get("labels") or None)}
        if host not in chosen:
            log.info("%s", f"host {host}: not selected in this run")
            return []
        return releases

    # Filled while the host groups are built, wired once all exist: builders' warm-ups -> installers' gates.
    warms: dict[str, Any] = {}
    gates: dict[str, Any] = {}

    def host_group(host: FleetHost, released: XComArg) -> TaskGroup:
        group = host_group_id(host.name)
        # executor: None is Airflow's default executor; an edge host names the Edge executor (docs/edge-hosts.md)
        on_host = {"ovcache_conn_id": host.conn_id, "host_name": host.name, "queue": host.queue, "executor": host.executor}
        builders = WAITS_FOR.get(host.name, ())
        # A builder warms and puts into the store; an installer installs from it (docs/fleet.md).
        store_role = {"store": host.store, "from_store": bool(builders)} if host.store else {}

        @task_group(group_id=group, tooltip=f"host {host.name}, queue {host.queue}")
        def per_release(model: str, version: int) -> None:
            wait = OvcacheModelVersionSensor(
                task_id="wait_for_version",
                model=model,
                version=version,
                repository=host.repository,
                poke_interval=WAIT_POKE_SECONDS,
                timeout=WAIT_FOR_VERSION_SECONDS,
                deferrable=DEFERRABLE,
                mode="poke" if DEFERRABLE else "reschedule",
                **on_host,
            )

            @task(queue=host.queue, executor=host.executor)
            def check_devices() -> dict:
                """Every device of the host must be present and able to cache (EXPORT_IMPORT)."""
                from airflow_ovcache.fleet.runs import record_failure
                from airflow_ovcache.hooks.ovcache import OvcacheHook

                with record_failure("check_devices"):
                    report = OvcacheHook(host.conn_id, host_name=host.name).devices(list(host.devices))
                    cannot = [d.name for d in report.devices if not d.can_cache]
                    if cannot:
                        raise RuntimeError(f"host {host.name}: device(s) {', '.join(cannot)} cannot cache (no EXPORT_IMPORT)")
                    return {"host": report.host, "devices": [d.name for d in report.devices]}

            warm = OvcacheWarmOperator(
                task_id="warm",
                models=model,
                version_numbers=version,
                devices=list(host.devices),
                properties=dict(host.properties) or None,
                serving_config=host.serving_config,
                profile=host.profile,
                loader=host.loader,
                loader_path=host.loader_path,
                model_class=host.model_class,
                pipeline=host.pipeline,
                ovms_config=host.ovms_config,
                ovms_path_map=dict(host.ovms_path_map) or None,
                repository=host.repository,
                cache_dir=host.cache_dir,
                confirm=True,
                outlets=[HOST_CACHES],
                **store_role,
                **on_host,
            )
            warms[host.name] = warm
            if builders:

                @task(trigger_rule=TriggerRule.ALL_DONE)
                def builders_done() -> None:
                    """Wait for the store's builders to end their warm-ups, however they end (then this host installs)."""

                gates[host.name] = builders_done()
                gates[host.name] >> warm
            verify = OvcacheVerifyOperator(
                task_id="verify", model=model, version=version, cache_dir=host.cache_dir, load_check=True, **on_host
            )
            invalidate = OvcacheInvalidateOperator(
                task_id="invalidate",
                models=model,
                versions=host.retain or None,
                cache_dir=host.cache_dir,
                ovms_config=host.ovms_config,
                ovms_path_map=dict(host.ovms_path_map) or None,
                **on_host,
            )

            @task(trigger_rule=TriggerRule.ALL_DONE)
            def outcome(model: str, version: int) -> dict:
                """What happened on this host: ok, or the step that failed and why."""
                from airflow_ovcache.fleet.runs import host_outcome, step_records

                ti = get_current_context()["ti"]
                records = step_records(ti, group, STEPS)
                result = host_outcome(records, STEPS, host=host.name, queue=host.queue, model=model, version=version)
                if not result["ok"] and not (records.get(result["failed_step"]) or {}).get("error"):
                    from airflow_ovcache.fleet.edge import not_reached

                    result.update(not_reached(host, result["failed_step"]))
                return result

            wait >> check_devices() >> warm >> verify >> invalidate >> outcome(model, version)

        return per_release.expand_kwargs(released)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict:
        """The run's summary; fails the run if any host failed, naming each failure."""
        from airflow_ovcache.fleet.runs import RunFailed, log_summary, mapped_results, release_summary

        ti = get_current_context()["ti"]
        if ti.xcom_pull(task_ids="releases") is None:
            raise RunFailed("this run's releases could not be worked out: see the log of the releases task")
        outcomes = []
        for host in HOSTS:
            group = host_group_id(host.name)
            planned = ti.xcom_pull(task_ids=f"targets.{group}") or []
            for release, got in zip(planned, mapped_results(ti, f"{group}.outcome", len(planned)), strict=True):
                outcomes.append(
                    got
                    or {
                        "host": host.name,
                        **release,
                        "ok": False,
                        "failed_step": "outcome",
                        "reason": "no outcome recorded (see the outcome task's log)",
                    }
                )
        text, failures = release_summary(outcomes)
        log_summary(text, failures)
        if failures:
            raise RunFailed(f"{len(failures)} of {len(outcomes)} host release(s) failed: " + "; ".join(failures))
        return {"hosts": len(outcomes), "failures": 0, "outcomes": outcomes}

    released = releases()
    done = summary()
    with TaskGroup("targets", tooltip="each host's share of the run") as targets:
        shares = {host.name: pick.override(task_id=host_group_id(host.name))(released, host.name) for host in HOSTS}
    for host in HOSTS:
        host_group(host, shares[host.name]) >> done
    for name, gate in gates.items():
        for builder in WAITS_FOR[name]:
            warms[builder] >> gate
    released >> targets >> done


release_by_queue = ovcache_release_by_queue()
