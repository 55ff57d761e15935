"""
# Release warm-up

Puts a new model version's compiled blobs on every inference host, before the first request.

## What a run does

For every host of the fleet inventory and every released model, in a mapped task group of its
own (labelled with the host, so one failing host does not stop the others and is found at once):

1. **wait_for_version**: wait until the version folder has landed in the host's repository
   (deferrable; copying models to hosts can lag the release);
2. **check_devices**: every device of the host can cache (`EXPORT_IMPORT`);
3. **warm**: compile the version as the host's server does (its *serving profile*: plain
   `compile_model`, OpenVINO Model Server from its own `config.json`, an in-house loader,
   optimum-intel's `from_pretrained`, or OpenVINO GenAI's `LLMPipeline`),
   then confirm in a fresh process that a compile following that profile loads from cache;
   the host's cache is emitted as an `ovcache://<host>/<model>` asset event;
4. **verify** with a load check;
5. **wait_for_served**, optional (`OVCACHE_WAIT_FOR_SERVED_SECONDS` above 0): wait, deferred, until
   the host's server has read the new blob, the evidence from the server's side; a timeout names
   what is still not served and keeps the old versions;
6. **invalidate**, only then: blobs of versions the host no longer keeps, stale or foreign ones;
7. **outcome**: what happened on this host.

A host the inventory marks `lean = true` is released in **one agent run** instead (`ovcache release`:
the same steps except waiting for the server, in one process and one transport session), as two task
instances: **release**, whose XCom keeps each step's status, summary and result, and **outcome**.
A failed step fails the release task; its failure record and the host's outcome name the step. While
`OVCACHE_WAIT_FOR_SERVED_SECONDS` is above 0, lean hosts are released step by step (that wait is a
deferred step of its own).

Hosts the inventory gives a **store** (a blob store directory they reach) compile a release once
per hardware class: the **plan** task asks each of them for its class (`ovcache devices`), and in
each (store, class) one host, the **builder** (`builder = true`, else the first listed), is released
in `on_builder` and puts what it compiled into the store; the others are released in `on_installer`,
once every builder is done (lean ones in `on_lean_installer`, one agent run each), and install
that set instead of compiling (checked, published as a warm publishes, proven with a load from
their cache); where a check fails the host compiles for itself and its line says why. Where each
host keeps its own store, sets move through the worker: from the builder's store (`store_relay`)
or through a hub in object storage (`store_hub`: the builder's warm task copies them up after its
put, each installer's down before its install). Other hosts, and store hosts whose class could not
be read, are released in `on_host` and compile for themselves.

The **summary** task logs one line per host (a lean host's line also lists each step's status); if any failed, the run fails and its message names
the host, model, version, the step that failed, why, and what to change.

## Starting it

- By a release: a pipeline lists `ovmodel://<repository>/<model>` as an outlet with
  `{"version": N}` in the event's extra.
- By hand: trigger with `model` and `version` (and optionally `hosts` / `labels`).
- By the repository itself: with `OVCACHE_WATCH_CONN_ID` set, a new version folder is a release.

## Configuration

- **Fleet inventory** (read at run time): `$OVCACHE_INVENTORY` or the Variable
  `ovcache_inventory`, a TOML file of hosts (`cache_dir`, `repository`, `devices`, `retain`,
  `conn_id`, `profile`, `ovms_config`, ...): see docs/fleet.md.
- **Connections**: one `ovcache` connection per host, or a shared local one (docs/connections.md).
- **Environment, read when the file is parsed**: `OVCACHE_REPOSITORY_NAME`,
  `OVCACHE_RELEASE_MODELS`, `OVCACHE_WAIT_FOR_VERSION_SECONDS`, `OVCACHE_WATCH_CONN_ID`,
  `OVCACHE_WATCH_INTERVAL_SECONDS`, `OVCACHE_LEAN_WAIT_SECONDS`.

Copy this file and edit the settings below. Parse-time settings come from the environment only:
no Variables, no network, no OpenVINO at import. More in docs/dags.md.
"""

from __future__ import annotations

import logging
import os

import pendulum
from airflow.sdk import AssetAlias, AssetAny, Param, TriggerRule, dag, get_current_context, task, task_group

from airflow_ovcache.assets import model_release, watched_model_release
from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator
from airflow_ovcache.sensors.model_version import OvcacheModelVersionSensor
from airflow_ovcache.sensors.served import OvcacheServedSensor

log = logging.getLogger(__name__)

# The repository's name in release URIs, and the models released from it.
REPOSITORY_NAME = os.environ.get("OVCACHE_REPOSITORY_NAME", "models")
RELEASE_MODELS = [m.strip() for m in os.environ.get("OVCACHE_RELEASE_MODELS", "classifier,detector").split(",") if m.strip()]
# How long a host may take to receive the version folder after the release.
WAIT_FOR_VERSION_SECONDS = float(os.environ.get("OVCACHE_WAIT_FOR_VERSION_SECONDS", "3600"))
# Optional: how long to wait for each host's server to read the new blob (0: do not wait).
# Servers load a new version when they restart or reload; set this to how long that can take.
WAIT_FOR_SERVED_SECONDS = float(os.environ.get("OVCACHE_WAIT_FOR_SERVED_SECONDS", "0"))
# Lean hosts: how long the agent itself waits for the version folder (it holds a worker slot and
# a transport session meanwhile; a longer lag is what the per-step path's deferrable sensor is for).
LEAN_WAIT_SECONDS = float(os.environ.get("OVCACHE_LEAN_WAIT_SECONDS", "60"))

# Optional: watch the repository for new version folders (see the module docstring).
WATCH_CONN_ID = os.environ.get("OVCACHE_WATCH_CONN_ID", "")
WATCH_INTERVAL_SECONDS = float(os.environ.get("OVCACHE_WATCH_INTERVAL_SECONDS", "60"))

RELEASES = [
    watched_model_release(REPOSITORY_NAME, model, ovcache_conn_id=WATCH_CONN_ID, poke_interval=WATCH_INTERVAL_SECONDS)
    if WATCH_CONN_ID
    else model_release(REPOSITORY_NAME, model)
    for model in RELEASE_MODELS
]
HOST_CACHES = AssetAlias("ovcache-host-caches")
# Mapped instances are labelled with their host (the ovcache operators and sensors do so themselves).
HOST_LABEL = "{{ task.op_kwargs['host'] }}"
HOST_MODEL_LABEL = "{{ task.op_kwargs['host'] }} · {{ task.op_kwargs['model'] }} v{{ task.op_kwargs['version'] }}"
LEAN_LABEL = (
    "{{ task.op_kwargs['target']['host'] }} · {{ task.op_kwargs['target']['model'] }} v{{ task.op_kwargs['target']['version'] }}"
)
# The plan's paths and the task group that releases each (the order the summary lists them in).
GROUPS = {
    "per_step": "on_host",
    "builders": "on_builder",
    "installers": "on_installer",
    "lean_installers": "on_lean_installer",
    "lean": "on_lean_host",
}
STEPS = [
    "wait_for_version",
    "check_devices",
    "warm",
    "verify",
    *(["wait_for_served"] if WAIT_FOR_SERVED_SECONDS > 0 else []),
    "invalidate",
]


@dag(
    dag_id="ovcache_release_warmup",
    schedule=AssetAny(*RELEASES),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["ovcache", "openvino"],
    doc_md=__doc__,
    params={
        "model": Param(None, type=["null", "string"], enum=[None, *RELEASE_MODELS], description="model to warm (manual runs)"),
        "version": Param(None, type=["null", "integer"], minimum=1, description="version to warm (manual runs)"),
        "hosts": Param(
            None, type=["null", "array"], items={"type": "string"}, description="only these inventory hosts (empty: all)"
        ),
        "labels": Param(
            None, type=["null", "array"], items={"type": "string"}, description="only hosts with all of these labels (empty: any)"
        ),
    },
)
def ovcache_release_warmup() -> None:
    @task
    def releases() -> list[dict]:
        """The (model, version) pairs of this run: from the release events, or from params."""
        from airflow_ovcache.fleet.runs import releases_of_run

        context = get_current_context()
        found = releases_of_run(context.get("triggering_asset_events"), context["params"], RELEASE_MODELS)
        log.info("%s", "releases in this run: " + ", ".join(f"{r['model']} version {r['version']}" for r in found))
        return found

    @task
    def plan(releases: list[dict]) -> dict:
        """Every (host, release) pair, by path: step by step, class builders, installers, lean (inventory read now)."""
        from airflow_ovcache.fleet.runs import hosts_for_run, inventory, plan_release

        hosts = hosts_for_run(inventory(), get_current_context()["params"])
        return plan_release(hosts, releases, waits_for_served=WAIT_FOR_SERVED_SECONDS > 0)

    @task
    def targets(plan: dict, path: str) -> list[dict]:
        """The plan's (host, release) pairs of one path, for its task group to map over."""
        return plan[path]

    @task_group
    def on_lean_host(target: dict) -> None:
        @task(map_index_template=LEAN_LABEL)
        def release(target: dict) -> dict:
            """The host's whole release in one agent run; each step's outcome goes to XCom."""
            from airflow_ovcache.fleet.runs import lean_release

            return lean_release(get_current_context()["ti"], target, wait=LEAN_WAIT_SECONDS)

        @task(trigger_rule=TriggerRule.ALL_DONE, map_index_template=LEAN_LABEL)
        def outcome(target: dict) -> dict:
            """What happened on this host: ok, or the step that failed and why."""
            from airflow_ovcache.fleet.runs import lean_outcome

            ti = get_current_context()["ti"]
            release = ti.task_id.replace(".outcome", ".release")  # on_lean_host or on_lean_installer
            return lean_outcome(ti, release, host=target["host"], model=target["model"], version=target["version"])

        release(target=target) >> outcome(target=target)

    @task_group
    def on_host(
        host: str,
        conn_id: str,
        cache_dir: str,
        repository: str,
        devices: str,
        retain: str,
        properties: dict,
        serving_config: str | None,
        profile: str | None,
        loader: str | None,
        loader_path: str | None,
        model_class: str | None,
        pipeline: str | None,
        ovms_config: str | None,
        ovms_path_map: dict,
        store: str | None,
        from_store: bool,
        relay_from: dict | None,
        relay_to: dict | None,
        model: str,
        version: int,
    ) -> None:
        where = {"ovcache_conn_id": conn_id, "host_name": host}

        wait = OvcacheModelVersionSensor(
            task_id="wait_for_version",
            model=model,
            version=version,
            repository=repository,
            poke_interval=30,
            timeout=WAIT_FOR_VERSION_SECONDS,
            **where,
        )

        @task(map_index_template=HOST_LABEL)
        def check_devices(conn_id: str, host: str, devices: str) -> dict:
            """Every device of the host must be present and able to cache (EXPORT_IMPORT)."""
            from airflow_ovcache.fleet.runs import record_failure
            from airflow_ovcache.hooks.ovcache import OvcacheHook

            with record_failure("check_devices"):
                report = OvcacheHook(conn_id, host_name=host).devices(devices.split(","))
                cannot = [d.name for d in report.devices if not d.can_cache]
                if cannot:
                    raise RuntimeError(f"host {host}: device(s) {', '.join(cannot)} cannot cache (no EXPORT_IMPORT)")
                return {"host": report.host, "devices": [d.name for d in report.devices]}

        warm = OvcacheWarmOperator(
            task_id="warm",
            models=model,
            version_numbers=version,
            devices=devices,
            properties=properties,
            serving_config=serving_config,
            profile=profile,
            loader=loader,
            loader_path=loader_path,
            model_class=model_class,
            pipeline=pipeline,
            ovms_config=ovms_config,
            ovms_path_map=ovms_path_map,
            repository=repository,
            cache_dir=cache_dir,
            confirm=True,
            store=store,
            from_store=from_store,
            relay_from=relay_from,
            relay_to=relay_to,
            outlets=[HOST_CACHES],
            **where,
        )
        verify = OvcacheVerifyOperator(
            task_id="verify", model=model, version=version, cache_dir=cache_dir, load_check=True, **where
        )
        invalidate = OvcacheInvalidateOperator(
            task_id="invalidate",
            models=model,
            versions=retain,
            cache_dir=cache_dir,
            ovms_config=ovms_config,
            ovms_path_map=ovms_path_map,
            **where,
        )

        @task(trigger_rule=TriggerRule.ALL_DONE, map_index_template=HOST_MODEL_LABEL)
        def outcome(host: str, model: str, version: int) -> dict:
            """What happened on this host: ok, or the step that failed and why."""
            from airflow_ovcache.fleet.runs import host_outcome, step_records

            ti = get_current_context()["ti"]
            group = ti.task_id.rpartition(".")[0]  # on_host, on_builder or on_installer
            return host_outcome(step_records(ti, group, STEPS), STEPS, host=host, model=model, version=version)

        checked = check_devices(conn_id=conn_id, host=host, devices=devices)
        after_verify = verify
        if WAIT_FOR_SERVED_SECONDS > 0:
            # Before invalidating: until the server reads the new blob it may still be serving the old version.
            after_verify = verify >> OvcacheServedSensor(
                task_id="wait_for_served",
                model=model,
                version=version,
                devices=devices,
                cache_dir=cache_dir,
                poke_interval=60,
                timeout=WAIT_FOR_SERVED_SECONDS,
                deferrable=True,
                **where,
            )
        wait >> checked >> warm >> verify
        after_verify >> invalidate >> outcome(host=host, model=model, version=version)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict:
        """The run's summary; fails the run if any host failed, naming each failure."""
        from airflow_ovcache.fleet.runs import RunFailed, log_summary, mapped_results, release_summary

        ti = get_current_context()["ti"]
        plan = ti.xcom_pull(task_ids="plan")
        if plan is None:
            raise RunFailed("no host was planned: the releases or plan task failed (see its log)")
        paths = {path: plan[path] for path in GROUPS}
        planned = [target for path in GROUPS for target in paths[path]]
        # A host whose outcome task did not run is reported, not dropped.
        got = [found for path, group in GROUPS.items() for found in mapped_results(ti, f"{group}.outcome", len(paths[path]))]
        outcomes = [
            found if found is not None else {**target, "ok": False, "failed_step": "outcome", "reason": "no outcome recorded"}
            for target, found in zip(planned, got, strict=True)
        ]
        text, failures = release_summary(outcomes, plan["classes"])
        log_summary(text, failures)
        if failures:
            raise RunFailed(f"{len(failures)} of {len(planned)} host release(s) failed: " + "; ".join(failures))
        return {"hosts": len(planned), "failures": 0, "outcomes": outcomes}

    released = releases()
    planned = plan(released)
    paths = {path: targets.override(task_id=f"{path}_targets")(planned, path) for path in GROUPS}
    done = summary()
    on_host.expand_kwargs(paths["per_step"]) >> done
    # Installers start once every builder is done (a failed builder leaves its class to compile for itself).
    builders = on_host.override(group_id="on_builder").expand_kwargs(paths["builders"])
    installers = on_host.override(group_id="on_installer").expand_kwargs(paths["installers"])
    lean_installers = on_lean_host.override(group_id="on_lean_installer").expand(target=paths["lean_installers"])
    builders >> [installers, lean_installers] >> done
    on_lean_host.expand(target=paths["lean"]) >> done


release_warmup = ovcache_release_warmup()
