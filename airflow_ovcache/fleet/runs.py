"""The logic the example DAGs share, kept out of the DAG files so it is tested and reused.

Everything here runs inside tasks, at run time: reading the inventory, working
out which release a run is for, collecting what happened on each host, and the
run's summary. Importing it is cheap (no OpenVINO, no network).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..assets import parse_model_release, versions_from_extra
from ..outcomes import ERROR_XCOM_KEY, record_kind, record_reason
from .inventory import INVENTORY_ENV, Fleet, FleetHost, load_fleet

log = logging.getLogger(__name__)

INVENTORY_VARIABLE = "ovcache_inventory"
# The XCom key a failed lean release leaves its per-step report under (its return value is not written).
RELEASE_XCOM_KEY = "ovcache_release"
# What a lean outcome names as the failed step when the agent never answered (no step ran).
LEAN_TASK_STEP = "release"
REPORT_DIR_ENV = "OVCACHE_REPORT_DIR"


class RunFailed(Exception):
    """The run's summary: raised by the summary task so the run ends failed, naming what failed and why."""


def inventory() -> Fleet:
    """The fleet inventory, from ``$OVCACHE_INVENTORY`` or the Airflow Variable ``ovcache_inventory``.

    Called in tasks only: DAG files never read it, so they parse without it.
    """
    path = os.environ.get(INVENTORY_ENV)
    if not path:
        from airflow.sdk import Variable

        path = Variable.get(INVENTORY_VARIABLE, default=None)
    return load_fleet(path)


def hosts_for_run(fleet: Fleet, params: Mapping[str, Any]) -> list[FleetHost]:
    """The hosts a run of a run-time-inventory DAG works on: selected by params, not routed by queue.

    A host with a ``queue`` is served by its own worker; a task can only be sent
    to it with a ``queue`` known when the DAG is parsed, which a run-time
    inventory cannot give. Such hosts are left to ``ovcache_release_by_queue``
    and said so in the log, never silently run on the wrong worker.

    :param fleet: the inventory.
    :param params: the run's params (``hosts`` and ``labels`` select; empty selects all).
    :raises ValueError: no host without a queue is selected.
    """
    selected = fleet.select(params.get("hosts") or None, params.get("labels") or None)
    queued = [h for h in selected if h.queue]
    for host in queued:
        log.info("host %s: routed by queue %s; left to the DAGs that route by queue", host.name, host.queue)
    direct = [h for h in selected if not h.queue]
    if not direct:
        raise ValueError("no host of the fleet inventory matches the run's hosts and labels (hosts with a queue are left out)")
    return direct


def host_kwargs(host: FleetHost, **extra: Any) -> dict[str, Any]:
    """One host as the keyword arguments of a per-host task group.

    :param host: the inventory's host.
    :param extra: more arguments of the group (a release's model and version, say).
    """
    return {
        "host": host.name,
        "conn_id": host.conn_id,
        "cache_dir": host.cache_dir,
        "repository": host.repository,
        "devices": ",".join(host.devices),
        "retain": host.retain,
        "properties": dict(host.properties),
        "serving_config": host.serving_config,
        "profile": host.profile,
        "loader": host.loader,
        "loader_path": host.loader_path,
        "model_class": host.model_class,
        "pipeline": host.pipeline,
        "ovms_config": host.ovms_config,
        "ovms_path_map": dict(host.ovms_path_map),
        # Compiles for itself unless the release plan makes it its class's builder or an installer.
        "store": None,
        "from_store": False,
        "relay_from": None,
        "relay_to": None,
        **extra,
    }


def plan_release(
    hosts: list[FleetHost],
    releases: list[Mapping[str, Any]],
    waits_for_served: bool = False,
    probe: Callable[[FleetHost], str | None] | None = None,
) -> dict[str, Any]:
    """The release's task-group arguments, by path: step by step, builders, installers, lean.

    Hosts with a ``store`` are grouped by (store, hardware class), asked of each host now
    (:mod:`.classes`); one host per group compiles and puts (step by step, lean or not), the others
    install after it (lean ones in one agent run each). A store host whose class cannot be read
    compiles for itself on its own path. Each list holds one entry per (host, release).

    :param hosts: the run's hosts, in inventory order.
    :param releases: the run's (model, version) pairs.
    :param waits_for_served: the DAG waits for each host's server between verify and invalidate.
    :param probe: returns one host's class key; default, asked of its agent through its connection.
    :return: ``{"per_step", "builders", "installers", "lean_installers", "lean", "classes"}``; ``classes``
        lists each (store, class) with its builder and installers.
    """
    from .classes import hook_probe, plan_classes, probe_classes

    _, lean = lean_split(hosts, waits_for_served)
    lean_names = {h.name for h in lean}
    # Hosts with a store are planned by class whether lean or not: a class's builder is released
    # step by step (one host per class), its lean installers in one agent run each, after it.
    plan = plan_classes(hosts, probe_classes([h for h in hosts if h.store], probe or hook_probe))
    by_name = {h.name: h for h in hosts}
    relay: dict[str, dict[str, Any]] = {}
    for group in plan.groups:
        builder = by_name[group.builder]
        if builder.store_hub:
            # Up from the builder's store after its put, down into each installer's before its install.
            hub = {"hub": builder.store_hub, "conn_id": builder.store_hub_conn_id, "class": group.key, "retain": builder.retain}
            relay.update(dict.fromkeys([builder.name, *group.installers], hub))
            continue
        for name in group.installers:
            if by_name[name].store_relay:
                relay[name] = {"conn_id": builder.conn_id, "host": builder.name, "store": builder.store, "class": group.key}

    def rows(group: list[FleetHost], from_store: bool | None = None) -> list[dict[str, Any]]:
        """The group's task arguments; ``from_store`` None: the hosts compile for themselves, without a store."""

        def role(h: FleetHost) -> dict[str, Any]:
            if from_store is None:
                return {}
            if not from_store:
                return {"store": h.store, "from_store": False, "relay_to": relay.get(h.name)}
            return {"store": h.store, "from_store": True, "relay_from": relay.get(h.name)}

        return [host_kwargs(h, model=r["model"], version=r["version"], **role(h)) for h in group for r in releases]

    return {
        "per_step": rows([h for h in plan.own if h.name not in lean_names]),
        "builders": rows(plan.builders, from_store=False),
        "installers": rows([h for h in plan.installers if h.name not in lean_names], from_store=True),
        "lean_installers": rows([h for h in plan.installers if h.name in lean_names], from_store=True),
        "lean": rows([h for h in plan.own if h.name in lean_names]),
        "classes": [g.to_json() for g in plan.groups],
    }


def lean_split(hosts: list[FleetHost], waits_for_served: bool = False) -> tuple[list[FleetHost], list[FleetHost]]:
    """The hosts released one task per step, and those released in one agent run (inventory key ``lean``).

    Waiting for the server to read the new blob is a deferred step between verify and
    invalidate; one agent run cannot hold it. While the DAG waits for the server, a lean
    host is released step by step, and the log says so, so the old version is never
    retired before the server has read the new one.

    :param hosts: the run's hosts.
    :param waits_for_served: the DAG waits for each host's server between verify and invalidate.
    :return: ``(per_step, lean)``, each in the inventory's order.
    """
    lean = [h for h in hosts if h.lean]
    if waits_for_served:
        for host in lean:
            log.info("host %s: lean is set, but this DAG waits for the server after verify: released step by step", host.name)
        return list(hosts), []
    return [h for h in hosts if not h.lean], lean


def lean_release(ti: Any, target: Mapping[str, Any], wait: float = 0.0) -> dict[str, Any]:
    """Release one host in one agent run (``ovcache release``); the lean path's one working task.

    Returns the :class:`~airflow_ovcache.hooks.reports.ReleaseReport`'s XCom (each step's status,
    summary and compact result). When a step fails, the same XCom is pushed under
    :data:`RELEASE_XCOM_KEY`, a failure record naming the step is pushed as every ovcache task
    does, and the task fails, so the host reads red in the grid and its outcome says where.

    :param ti: the running task instance.
    :param target: the host's task arguments (:func:`host_kwargs`, with ``model`` and ``version``).
    :param wait: seconds the agent waits for the version folder to appear.
    """
    from ..hooks.ovcache import OvcacheHook
    from ..operators.base import push_failure

    host = str(target["host"])
    hook = OvcacheHook(str(target["conn_id"]), host_name=host, cache_dir=target["cache_dir"], repository=target["repository"])
    relayed = None
    if target.get("relay_from") and target.get("store") and target.get("from_store"):
        from ..hooks.store_relay import relay_release

        relayed = relay_release(
            hook, dict(target["relay_from"]), str(target["store"]), [str(target["model"])], [int(target["version"])], log
        )
    try:
        report = hook.release(
            model=str(target["model"]),
            version=int(target["version"]),
            retain=target.get("retain") or None,
            devices=[d for d in str(target.get("devices") or "").split(",") if d],
            properties=target.get("properties") or None,
            serving_config=target.get("serving_config"),
            profile=target.get("profile"),
            loader=target.get("loader"),
            loader_path=target.get("loader_path"),
            model_class=target.get("model_class"),
            pipeline=target.get("pipeline"),
            ovms_config=target.get("ovms_config"),
            ovms_path_map=target.get("ovms_path_map") or None,
            wait=wait,
            store=target.get("store") or None,
            from_store=bool(target.get("from_store")),
        )
    except Exception as exc:
        # The agent never answered (unreachable, not installed...): no step ran.
        push_failure(ti, LEAN_TASK_STEP, exc, log)
        raise
    xcom = report.to_xcom()
    if relayed is not None:
        xcom["relayed"] = relayed
    for step in report.steps:
        (log.error if step.failed else log.info)("host %s: step %s: %s: %s", report.host, step.step, step.status, step.summary)
    failed = report.failed_step
    if failed is None:
        return xcom
    ti.xcom_push(key=RELEASE_XCOM_KEY, value=xcom)
    error = _step_failure(hook, report, failed)
    push_failure(ti, failed.step, error, log)
    raise error


def _step_failure(hook: Any, report: Any, failed: Any) -> Exception:
    """The error a failed release step fails the lean task with: the agent's own, or the problems it found."""
    from ..hooks.errors import AgentCommandError, ItemsFailed, ProblemsFound

    target = hook.target(report.model, str(report.version)).with_host(report.host)
    if failed.error is not None:
        return AgentCommandError(target, failed.error, hook.ovcache_conn_id)
    if failed.step == "warm":
        hint = "the other items were published; fix the cause and rerun, unchanged items are not recompiled"
        return ItemsFailed(target, f"step warm: {failed.summary}", hint)
    return ProblemsFound(target, f"step {failed.step}: {failed.summary}", "the steps after it did not run; old versions are kept")


def lean_outcome(ti: Any, task_id: str, **identity: Any) -> dict[str, Any]:
    """One lean host's outcome, in the shape of :func:`host_outcome` plus each step's status and summary.

    :param ti: the running task instance (its ``map_index`` selects the host).
    :param task_id: the lean release task.
    :param identity: what names the outcome (host, model, version), copied into it.
    """
    map_index = getattr(ti, "map_index", -1)
    xcom = ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
    error = None
    if xcom is None:
        # Only a failed task leaves these; asking for them otherwise logs an error (see step_records).
        xcom = ti.xcom_pull(task_ids=task_id, key=RELEASE_XCOM_KEY, map_indexes=map_index)
        error = ti.xcom_pull(task_ids=task_id, key=ERROR_XCOM_KEY, map_indexes=map_index)
    records: dict[str, dict[str, Any]] = {}
    if not xcom:
        # The agent never answered: the failure is the task's own.
        records[LEAN_TASK_STEP] = {"result": None, "error": error}
        return {**host_outcome(records, [LEAN_TASK_STEP], **identity), "lean": True, "steps": {}}
    steps = xcom.get("steps") or {}
    for name, step in steps.items():
        if step.get("status") == "ok":
            records[name] = {"result": step.get("result") or {}, "error": None}
        elif step.get("status") == "failed":
            own = error if error and error.get("task_id") == name else None
            records[name] = {"result": None, "error": own or {"reason": step.get("summary"), "kind": None}}
    outcome = host_outcome(records, list(steps), **identity)
    outcome["lean"] = True
    outcome["steps"] = {name: {"status": s.get("status"), "summary": s.get("summary")} for name, s in steps.items()}
    return outcome


def releases_of_run(triggering_asset_events: Any, params: Mapping[str, Any], models: Iterable[str]) -> list[dict[str, Any]]:
    """Which (model, version) pairs this run warms: from the release events, or from the params of a manual run.

    :param triggering_asset_events: the task context's ``triggering_asset_events``.
    :param params: the run's params (``model`` and ``version`` of a manual run).
    :param models: the models this DAG releases; a manual run must name one of them.
    :raises ValueError: the run carries no release, or its params are not one.
    """
    releases: dict[str, int] = {}
    for asset, events in _asset_events(triggering_asset_events):
        uri = getattr(asset, "uri", None) or str(asset)
        try:
            _, model = parse_model_release(uri)
        except ValueError:
            continue
        for event in events:
            for version in versions_from_extra(getattr(event, "extra", None)):
                releases[model] = max(releases.get(model, 0), version)
    if not releases and params.get("model"):
        model = str(params["model"])
        if model not in set(models):
            raise ValueError(f"model {model!r} is not one of this DAG's release models: {', '.join(models)}")
        if params.get("version") in (None, ""):
            raise ValueError(f"model {model}: give the version to warm in the run's params (version)")
        from ..core.values import parse_count

        try:
            releases[model] = parse_count(params["version"], minimum=1)
        except ValueError:
            raise ValueError(f"model {model}: param version={params['version']!r} is not a version number") from None
    if not releases:
        raise ValueError("this run carries no release: trigger it from a release asset event, or give params model and version")
    return [{"model": m, "version": v} for m, v in sorted(releases.items())]


def _asset_events(accessor: Any) -> Iterable[tuple[Any, list[Any]]]:
    """(asset, events) pairs of ``context["triggering_asset_events"]`` (iterable of assets, indexable)."""
    if not accessor:
        return []
    pairs = []
    for asset in accessor:
        try:
            pairs.append((asset, list(accessor[asset] or ())))
        except KeyError:
            continue
    return pairs


@contextlib.contextmanager
def record_failure(step: str) -> Iterator[None]:
    """In a ``@task``: on failure, leave the reason in XCom the way the ovcache operators do.

    :param step: the step the failure record names (the summary says the host failed at it).
    """
    try:
        yield
    except Exception as exc:
        from airflow.sdk import get_current_context

        from ..operators.base import push_failure

        try:
            ti = get_current_context()["ti"]
        except Exception:  # noqa: BLE001 - never mask the real failure
            ti = None
        if ti is not None:
            push_failure(ti, step, exc, log)
        raise


def mapped_results(ti: Any, task_id: str, count: int) -> list[Any]:
    """The result of each of ``count`` mapped instances of ``task_id`` (None where there is none).

    :param ti: the running task instance.
    :param task_id: the mapped task.
    :param count: how many instances it was mapped into.
    """
    return [ti.xcom_pull(task_ids=task_id, map_indexes=i) for i in range(count)]


def step_records(ti: Any, group: str, steps: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What each step of this task-group instance left in XCom, up to the first one without a result.

    A step's failure record is read only when it has no result: asking for an XCom
    that does not exist is logged as an error by the Task SDK, and a log full of
    errors for steps that went fine misleads whoever reads it at night.

    :param ti: the running task instance (its ``map_index`` selects the group's instance).
    :param group: the task group's id.
    :param steps: the group's step task ids, in order.
    """
    map_index = getattr(ti, "map_index", -1)
    out: dict[str, dict[str, Any]] = {}
    for step in steps:
        task_id = f"{group}.{step}"
        result = ti.xcom_pull(task_ids=task_id, map_indexes=map_index)
        if result is not None:
            out[step] = {"result": result, "error": None}
            continue
        error = ti.xcom_pull(task_ids=task_id, key=ERROR_XCOM_KEY, map_indexes=map_index)
        out[step] = {"result": None, "error": error}
        break
    return out


def host_outcome(records: dict[str, dict[str, Any]], steps: list[str], **identity: Any) -> dict[str, Any]:
    """One host's outcome: ok, or the first step that failed and why (or that it never ran).

    :param records: what :func:`step_records` returned.
    :param steps: the steps, in order.
    :param identity: what names the outcome (host, model, version), copied into it.
    """
    outcome: dict[str, Any] = {**identity, "ok": True, "failed_step": None, "reason": None}
    for step in steps:
        record = records.get(step) or {}
        if record.get("result") is not None:
            outcome[step] = record["result"]
            continue
        outcome["ok"] = False
        outcome["failed_step"] = step
        error = record.get("error")
        outcome["reason"] = record_reason(error) if error else f"step {step} did not finish (see its log)"
        outcome["failure_kind"] = record_kind(error)
        break
    return outcome


def log_summary(text: str, failures: list[str]) -> None:
    """The run's summary in the task's log: one line each, failures at ERROR, before the task raises.

    Printed lines land after the traceback, or inside the collapsed "post execute"
    group; logged lines are where the person who opens the summary task looks.

    :param text: the summary, a head line then one line per host.
    :param failures: the lines that are failures.
    """
    head, *lines = text.splitlines()
    log.info("%s", head)
    for line in lines:
        (log.error if line in failures else log.info)("%s", line)


def release_summary(
    outcomes: Iterable[dict[str, Any] | None], classes: Iterable[Mapping[str, Any]] = ()
) -> tuple[str, list[str]]:
    """A readable summary of a release run and one line per failure.

    :param outcomes: each host's :func:`host_outcome` (None where the host left none).
    :param classes: the release plan's (store, class) groups (:func:`plan_release`'s ``classes``):
        one more line each, saying who compiled, who installed, who fell back and what it saved.
    """
    from .classes import class_lines

    rows = [o for o in outcomes if o]
    lines = []
    failures = []
    for o in sorted(rows, key=lambda r: (r.get("host", ""), r.get("model", ""))):
        label = f"host {o['host']}, model {o['model']}, version {o['version']}"
        # A lean host's line also names each step of its one agent run.
        steps = o.get("steps") or {}
        done = ", ".join(f"{name} {step.get('status')}" for name, step in steps.items())
        trail = f" [one agent run: {done}]" if steps else ""
        if o["ok"]:
            removed = len((o.get("invalidate") or {}).get("removals") or [])
            lines.append(
                f"{label}: ok ({_warm_words(o.get('warm') or {})}; "
                f"verified with a load from cache; {removed} old blob(s) removed){trail}"
            )
        else:
            line = f"{label}: FAILED at {o['failed_step']}: {o['reason']}{trail}"
            lines.append(line)
            failures.append(line)
    head = f"release warm-up: {len(rows) - len(failures)} of {len(rows)} host(s) ok"
    return "\n".join([head, *lines, *class_lines(rows, classes)]), failures


def _warm_words(warm: Mapping[str, Any]) -> str:
    """What the warm step did on one host, in the words of its role (compiled, or installed from the store)."""
    from ..hooks.reports import BUILDER, INSTALLER

    counts = warm.get("summary") or {}
    if warm.get("role") == INSTALLER:
        fallbacks = [i["fallback"] for i in warm.get("items") or [] if i.get("fallback")]
        words = (
            f"installed {counts.get('installed', 0)} from the store, compiled {counts.get('warmed', 0)} here, "
            f"unchanged {counts.get('unchanged', 0)}"
        )
        return words + (f"; fell back: {fallbacks[0]}" if fallbacks else "")
    words = f"warmed {counts.get('warmed', 0)}, unchanged {counts.get('unchanged', 0)}"
    if warm.get("role") == BUILDER:
        put = warm.get("store_put") or {}
        stored = sum(1 for i in put.get("items") or [] if i.get("status") == "stored")
        words += f", stored {stored} in the store" + (f" (not stored: {put['problems'][0]})" if put.get("problems") else "")
    return words


def report_dir() -> str:
    """Where the nightly report is written: ``$OVCACHE_REPORT_DIR``, else ``$AIRFLOW_HOME/ovcache-reports``."""
    explicit = os.environ.get(REPORT_DIR_ENV)
    if explicit:
        return explicit
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    return os.path.join(home, "ovcache-reports")
