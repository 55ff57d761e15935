"""Release warm-up: put a new model version's compiled blobs on every inference host.

Scheduled on the model-release assets (``ovmodel://<repository>/<model>``): a
release pipeline that lists one as an outlet, with ``{"version": N}`` in the
event's extra, starts it. It can also be started by hand with the params
``model``, ``version`` and optionally ``hosts`` / ``labels``.

For every host in the fleet inventory (read at run time) and every released
model, in its own mapped task group so one host failing does not stop the
others:

1. wait until the version folder has landed in the host's repository
   (a deferrable sensor: copying models to hosts can lag the release);
2. check that each of the host's devices can cache (``EXPORT_IMPORT``);
3. warm the version for each device, confirming in a fresh process that a
   compile following the spec's serving profile loads it from cache (proof for
   the profile's call, not for the server); each host's cache is emitted as an
   ``ovcache://<host>/<model>`` asset event through the ``ovcache-host-caches`` alias;
4. verify it with a load check;
5. optionally (``OVCACHE_WAIT_FOR_SERVED_SECONDS`` above 0) wait, deferred,
   until the host's server has read the new blob: the evidence from the
   server's side that the warm-up replayed the call it makes. A timeout names
   what is still not served and leaves the old versions in place;
6. only then invalidate: remove blobs of versions the host's retention policy
   no longer keeps, and stale or foreign ones;
7. record the host's outcome.

A summary task lists every host; if any failed, the run ends failed and the
summary names the host, model, version, the step that failed and why.

Watching the repository: with ``OVCACHE_WATCH_CONN_ID`` set (an ``ovcache``
connection whose ``repository`` is where releases land), each release asset
carries an ``AssetWatcher``: the triggerer lists the repository through the
agent and emits one release event per new version folder, never two for the
same version, so publishing a version folder is a release.

Copy this file and edit the settings below. Parse-time settings come from
environment variables only: no Variables, no network, no OpenVINO at import.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import AssetAlias, AssetAny, Param, TriggerRule, dag, get_current_context, task, task_group

from airflow_ovcache.assets import model_release, watched_model_release
from airflow_ovcache.operators.invalidate import OvcacheInvalidateOperator
from airflow_ovcache.operators.verify import OvcacheVerifyOperator
from airflow_ovcache.operators.warm import OvcacheWarmOperator
from airflow_ovcache.sensors.model_version import OvcacheModelVersionSensor
from airflow_ovcache.sensors.served import OvcacheServedSensor

# The repository's name in release URIs, and the models released from it.
REPOSITORY_NAME = os.environ.get("OVCACHE_REPOSITORY_NAME", "models")
RELEASE_MODELS = [m.strip() for m in os.environ.get("OVCACHE_RELEASE_MODELS", "classifier,detector").split(",") if m.strip()]
# How long a host may take to receive the version folder after the release.
WAIT_FOR_VERSION_SECONDS = float(os.environ.get("OVCACHE_WAIT_FOR_VERSION_SECONDS", "3600"))
# Optional: how long to wait for each host's server to read the new blob (0: do not wait).
# Servers load a new version when they restart or reload; set this to how long that can take.
WAIT_FOR_SERVED_SECONDS = float(os.environ.get("OVCACHE_WAIT_FOR_SERVED_SECONDS", "0"))

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
        "model": Param(None, type=["null", "string"], description="model to warm (manual runs)"),
        "version": Param(None, type=["null", "integer"], minimum=1, description="version to warm (manual runs)"),
        "hosts": Param([], type="array", description="only these inventory hosts (default: all)"),
        "labels": Param([], type="array", description="only hosts with all of these labels"),
    },
)
def ovcache_release_warmup() -> None:
    @task
    def releases() -> list[dict]:
        """The (model, version) pairs of this run: from the release events, or from params."""
        from airflow_ovcache.fleet_runs import releases_of_run

        context = get_current_context()
        found = releases_of_run(context.get("triggering_asset_events"), context["params"], RELEASE_MODELS)
        print("releases in this run: " + ", ".join(f"{r['model']} version {r['version']}" for r in found))
        return found

    @task
    def targets(releases: list[dict]) -> list[dict]:
        """Every (host, release) pair, from the fleet inventory read now."""
        from airflow_ovcache.fleet_runs import host_kwargs, hosts_for_run, inventory

        params = get_current_context()["params"]
        hosts = hosts_for_run(inventory(), params)
        return [host_kwargs(h, model=r["model"], version=r["version"]) for h in hosts for r in releases]

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

        @task
        def check_devices(conn_id: str, host: str, devices: str) -> dict:
            """Every device of the host must be present and able to cache (EXPORT_IMPORT)."""
            from airflow_ovcache.fleet_runs import record_failure
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
            repository=repository,
            cache_dir=cache_dir,
            confirm=True,
            outlets=[HOST_CACHES],
            **where,
        )
        verify = OvcacheVerifyOperator(
            task_id="verify", model=model, version=version, cache_dir=cache_dir, load_check=True, **where
        )
        invalidate = OvcacheInvalidateOperator(task_id="invalidate", models=model, versions=retain, cache_dir=cache_dir, **where)

        @task(trigger_rule=TriggerRule.ALL_DONE)
        def outcome(host: str, model: str, version: int) -> dict:
            """What happened on this host: ok, or the step that failed and why."""
            from airflow_ovcache.fleet_runs import host_outcome, step_records

            ti = get_current_context()["ti"]
            return host_outcome(step_records(ti, "on_host", STEPS), STEPS, host=host, model=model, version=version)

        checked = check_devices(conn_id, host, devices)
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
        after_verify >> invalidate >> outcome(host, model, version)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def summary() -> dict:
        """The run's summary; fails the run if any host failed, naming each failure."""
        from airflow_ovcache.fleet_runs import RunFailed, mapped_results, release_summary

        ti = get_current_context()["ti"]
        planned = ti.xcom_pull(task_ids="targets")
        if planned is None:
            raise RunFailed("no host was planned: the releases or targets task failed (see its log)")
        # A host whose outcome task did not run is reported, not dropped.
        outcomes = [
            got if got is not None else {**target, "ok": False, "failed_step": "outcome", "reason": "no outcome recorded"}
            for target, got in zip(planned, mapped_results(ti, "on_host.outcome", len(planned)), strict=True)
        ]
        text, failures = release_summary(outcomes)
        print(text)
        if failures:
            raise RunFailed(f"{len(failures)} of {len(planned)} host release(s) failed: " + "; ".join(failures))
        return {"hosts": len(planned), "failures": 0, "outcomes": outcomes}

    on_host.expand_kwargs(targets(releases())) >> summary()


release_warmup = ovcache_release_warmup()
