"""Hosts served by their own Airflow worker, listed where a DAG file can read them: the environment.

A task's ``queue`` is fixed when the DAG file is parsed; it cannot be mapped at
run time. A DAG that sends each host's tasks to that host's own worker must
therefore know its hosts at parse time, and a DAG file may read nothing but
the environment then (no inventory file, no Variable, no network). This module
reads that one setting into the inventory's own :class:`~airflow_ovcache.fleet.inventory.FleetHost`,
validated by the inventory's rules. Importing it is cheap.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from ..core.errors import UsageError
from .inventory import FleetHost, parse_fleet

QUEUE_HOSTS_ENV = "OVCACHE_QUEUE_HOSTS"
_GROUP_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def parse_queue_hosts(spec: str, defaults: dict[str, Any] | None = None, source: str = f"${QUEUE_HOSTS_ENV}") -> list[FleetHost]:
    """The hosts of a queue-routing DAG, from one setting.

    Two spellings:

    * compact: ``infer-1:/var/cache/openvino:/models,infer-2``, each host
      ``name[:cache_dir[:repository]]``, the missing parts from ``defaults``;
    * JSON: a list of inventory host tables,
      ``[{"name": "infer-2", "devices": ["CPU", "GPU"], "retain": "latest:1"}]``,
      or ``{"defaults": {...}, "hosts": [...]}``, with every key the inventory knows.

    ``defaults`` are inventory defaults (``cache_dir``, ``repository``, ``devices``,
    ``retain``, ``conn_id``...); the JSON form's own ``defaults`` win over them.
    Each host's ``queue`` is its name unless given. An empty setting is no host.
    A mistake fails with one line naming the host and the key, as in the
    inventory; two hosts on one queue are refused, since either host's worker
    could then run the other's tasks against the wrong cache.

    :param spec: the setting (``$OVCACHE_QUEUE_HOSTS``), compact or JSON.
    :param defaults: inventory defaults for what a host leaves out.
    :param source: what the setting is called in messages.
    :raises UsageError: naming the host and the key at fault.
    """
    text = (spec or "").strip()
    if not text:
        return []
    base = {k: v for k, v in (defaults or {}).items() if v not in (None, "")}
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"{source} is not valid JSON: {exc}") from None
        if isinstance(data, list):
            data = {"hosts": data}
        if not isinstance(data, dict):
            raise UsageError(f"{source}: expected a JSON list of hosts, or an object with defaults and hosts")
        data = {**data, "defaults": {**base, **(data.get("defaults") or {})}}
    else:
        hosts: list[dict[str, Any]] = []
        for item in text.split(","):
            if not item.strip():
                continue
            parts = [p.strip() for p in item.split(":", 2)]
            host: dict[str, Any] = {"name": parts[0]}
            for key, value in zip(("cache_dir", "repository"), parts[1:], strict=False):
                if value:
                    host[key] = value
            hosts.append(host)
        data = {"defaults": base, "hosts": hosts}
    found = [h if h.queue else replace(h, queue=h.name) for h in parse_fleet(data, source).hosts]
    _one_host_per(found, lambda h: str(h.queue), f"{source}: hosts share a queue", "give each host its own queue")
    _one_host_per(
        found,
        lambda h: host_group_id(h.name),
        f"{source}: host names differ only in characters other than letters, digits, '_' and '-'",
    )
    return found


def store_builders(hosts: list[FleetHost]) -> dict[str, tuple[str, ...]]:
    """Who compiles for a shared store in a queue-routed release, and whom each other host waits for.

    The queue-routed release cannot ask the hosts for their hardware class before it is parsed
    (a task's queue and its dependencies are fixed then), so it cannot pick one builder per class
    at run time as the SSH release does. It picks per store, from the host list: the hosts marked
    ``builder`` (one per hardware class, say), else the first host listed with that store. Hosts
    that give the same ``store`` path share one store (a mount at the same path on each). Every
    other host of the store waits for its builders' warm-ups and then installs; a host whose class
    no builder has finds no set and compiles for itself, saying so in its line of the summary.

    :param hosts: the DAG's hosts.
    :return: for every host with a store, the builders it waits for (none for a builder itself).
    """
    by_store: dict[str, list[FleetHost]] = {}
    for h in hosts:
        if h.store:
            by_store.setdefault(h.store, []).append(h)
    waits: dict[str, tuple[str, ...]] = {}
    for members in by_store.values():
        builders = [h.name for h in members if h.builder] or [members[0].name]
        for h in members:
            waits[h.name] = () if h.name in builders else tuple(builders)
    return waits


_ONE_MOUNT = "give every host the same store path on one shared mount, or release the host from ovcache_release_warmup"
# Host keys only the SSH release reads: why the queue-routed one cannot, and what to do instead.
_SSH_RELEASE_ONLY = {
    "store_relay": ("a host's worker reaches only its own host, so it cannot copy another host's store", _ONE_MOUNT),
    "store_hub": (
        "a builder's sets go up to the hub and an installer's come down from it in the SSH release's tasks",
        _ONE_MOUNT,
    ),
    "lean": (
        "each step is its own task on the host's queue",
        "remove lean from the host, or release it from ovcache_release_warmup",
    ),
}


def refuse_unread_keys(hosts: list[FleetHost], source: str = f"${QUEUE_HOSTS_ENV}") -> None:
    """Fail on a host key the queue-routed release would otherwise ignore in silence.

    :param hosts: the DAG's hosts.
    :param source: what the setting is called in messages.
    :raises UsageError: naming the first host and key.
    """
    for h in hosts:
        for key, (why, hint) in _SSH_RELEASE_ONLY.items():
            if getattr(h, key):
                raise UsageError(f"{source}: host {h.name}: {key} is not read by the queue-routed release ({why})", hint=hint)


def host_group_id(name: str) -> str:
    """A host's name as a task group id (a '.' would read as a group separator).

    :param name: the host's name.
    """
    return _GROUP_ID_UNSAFE.sub("_", name)


def _one_host_per(hosts: list[FleetHost], key: Any, message: str, hint: str = "") -> None:
    seen: dict[str, list[str]] = {}
    for h in hosts:
        seen.setdefault(key(h), []).append(h.name)
    clashes = [f"{k} ({', '.join(names)})" for k, names in seen.items() if len(names) > 1]
    if clashes:
        raise UsageError(f"{message}: {'; '.join(clashes)}", hint=hint)
