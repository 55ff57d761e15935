"""Which hosts of a release compile and which install: one builder per hardware class and store.

Hosts whose devices report equal class keys (``ovcache devices``, docs/fleet.md "Hardware
classes") and that reach the same blob store (inventory key ``store``) would compile the same
bytes. A release compiles on one of them, the class's *builder* (the first host of the class
the inventory marks ``builder = true``, else the first in inventory order), which puts what it
compiled into the store; the others *install* that set and prove it with a load from their own
cache, and fall back to a local compile where a check fails.

Everything here runs in a task, at run time. The class of each host is asked of the host
itself (one ``devices`` call each, in parallel), not taken on trust from the inventory: an
inventory cannot know that a host's runtime was upgraded yesterday. A host whose class cannot
be read compiles for itself, and the log says why; its own devices step then fails or passes
as on any host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .inventory import FleetHost

log = logging.getLogger(__name__)

# How many hosts are asked for their class at once (each is one short agent run).
PROBE_WORKERS = 16

# The group's store when each host keeps its own and sets are relayed (inventory ``store_relay``).
RELAYED = "relayed between hosts"


def shared_store(host: FleetHost) -> str:
    """What a host shares its sets through: a hub (inventory ``store_hub``), the builder's store (relayed), or one mount."""
    if host.store_hub:
        return f"hub {host.store_hub}"
    return RELAYED if host.store_relay else str(host.store)


@dataclass(frozen=True)
class HostClass:
    """What a host said its hardware class is, or why it could not.

    :param host: the inventory's host name.
    :param key: the host's class, one class key per device joined by ``+`` in its device order;
        None when it could not be read.
    :param reason: why the class could not be read (empty when it was).
    """

    host: str
    key: str | None
    reason: str = ""


@dataclass
class ClassGroup:
    """The hosts of one (store, class): who compiles and who installs.

    :param store: the blob store the group shares.
    :param key: the hardware class.
    :param builder: the host that compiles and puts the set.
    :param installers: the hosts that install it, in inventory order.
    """

    store: str
    key: str
    builder: str
    installers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The group as plain JSON, for XCom."""
        return {"store": self.store, "class": self.key, "builder": self.builder, "installers": list(self.installers)}


@dataclass
class ClassPlan:
    """A release's hosts split by role.

    :param own: hosts that compile for themselves (no store, or their class could not be read).
    :param builders: one host per (store, class), which compiles and puts.
    :param installers: every other host of a class, which installs.
    :param groups: each (store, class) with its builder and installers.
    """

    own: list[FleetHost] = field(default_factory=list)
    builders: list[FleetHost] = field(default_factory=list)
    installers: list[FleetHost] = field(default_factory=list)
    groups: list[ClassGroup] = field(default_factory=list)


def class_of(devices: Iterable[Any]) -> str | None:
    """A host's class from its devices report rows: each device's class key, joined by ``+``.

    None when a device reports no key (an agent older than hardware classes): such a host cannot
    be matched with others and compiles for itself.

    :param devices: the report's device rows (each with ``class_key``), in the host's device order.
    """
    keys = [str(getattr(d, "class_key", "") or "") for d in devices]
    if not keys or not all(keys):
        return None
    return "+".join(keys)


def probe_classes(
    hosts: Iterable[FleetHost], probe: Callable[[FleetHost], str | None], workers: int = PROBE_WORKERS
) -> dict[str, HostClass]:
    """Ask each host for its class, ``workers`` at a time; a host that fails to answer gets the reason.

    :param hosts: the hosts to ask.
    :param probe: returns one host's class key (see :func:`class_of`), or raises.
    :param workers: how many hosts are asked at once.
    """
    hosts = list(hosts)

    def ask(host: FleetHost) -> HostClass:
        try:
            key = probe(host)
        except Exception as exc:  # noqa: BLE001 - any failure means "compile for yourself", said in the log
            return HostClass(host.name, None, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if key is None:
            return HostClass(host.name, None, "its agent reports no hardware class (upgrade airflow-ovcache there)")
        return HostClass(host.name, key)

    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(hosts)))) as pool:
        return {c.host: c for c in pool.map(ask, hosts)}


def plan_classes(hosts: Iterable[FleetHost], classes: Mapping[str, HostClass]) -> ClassPlan:
    """Split hosts into those that compile for themselves, one builder per (store, class), and installers.

    :param hosts: the release's hosts, in inventory order.
    :param classes: what :func:`probe_classes` found for the hosts with a store.
    """
    plan = ClassPlan()
    members: dict[tuple[str, str], list[FleetHost]] = {}
    for host in hosts:
        found = classes.get(host.name)
        if not host.store:
            plan.own.append(host)
            continue
        if found is None or found.key is None:
            why = found.reason if found else "it was not asked"
            log.warning("host %s: hardware class not known (%s): it compiles for itself", host.name, why)
            plan.own.append(host)
            continue
        # Relayed stores are one per host: the class's hosts share the builder's (or a hub's) through the worker.
        members.setdefault((shared_store(host), found.key), []).append(host)
    for (store, key), group in members.items():
        marked = [h for h in group if h.builder]
        builder = (marked or group)[0]
        rest = [h for h in group if h is not builder]
        plan.builders.append(builder)
        plan.installers.extend(rest)
        plan.groups.append(ClassGroup(store, key, builder.name, [h.name for h in rest]))
        log.info(
            "class %s (store %s): %s compiles%s",
            key,
            store,
            builder.name,
            f", {', '.join(h.name for h in rest)} install" if rest else ", no other host of this class",
        )
    return plan


def hook_probe(host: FleetHost) -> str | None:
    """One host's class, asked of its agent through its ``ovcache`` connection (``ovcache devices``).

    :param host: the host, with its connection and devices from the inventory.
    """
    from ..hooks.ovcache import OvcacheHook

    hook = OvcacheHook(host.conn_id, host_name=host.name, cache_dir=host.cache_dir, devices=list(host.devices))
    report = hook.devices(list(host.devices))
    return class_of(report.devices)


def class_lines(outcomes: Iterable[Mapping[str, Any]], groups: Iterable[Mapping[str, Any]]) -> list[str]:
    """One summary line per (store, class): who compiled, who installed, who fell back, what it saved.

    "Saved" counts the items installed instead of compiled and prices them at the builder's own
    compile time for the same items, an estimate the line says it is; a host that fell back or
    failed saved nothing and is named. An installer whose install found it of another class than the
    plan did (its runtime or hardware changed in between) is named with the class it is now: the
    line must not count it a member of the class it heads.

    :param outcomes: the hosts' outcomes (each with ``host`` and, when its warm step ran, ``warm``).
    :param groups: the plan's groups (:meth:`ClassGroup.to_json`).
    """
    by_host: dict[str, list[Mapping[str, Any]]] = {}
    for o in outcomes:
        by_host.setdefault(str(o.get("host")), []).append(o)
    lines = []
    for group in groups:
        builder = str(group["builder"])
        built = [o.get("warm") or {} for o in by_host.get(builder, [])]
        compiled = [i for w in built for i in w.get("items") or [] if i.get("status") == "warmed"]
        per_item = {(i["model"], i["version"], i["device"]): float(i.get("compile_seconds") or 0.0) for i in compiled}
        took = sum(per_item.values())
        if not built:
            head = f"{builder} compiled nothing (its warm step did not finish)"
        elif compiled:
            head = f"compiled on {builder} ({len(compiled)} item(s), {took:.1f} s)"
        else:
            head = f"nothing to compile on {builder} (unchanged)"
        installed: list[str] = []
        fell_back: list[str] = []
        moved: list[str] = []
        failed: list[str] = []
        planned = set(str(group["class"]).split("+"))
        saved_items = 0
        saved_seconds = 0.0
        for name in group.get("installers") or []:
            rows = by_host.get(str(name), [])
            items = [i for o in rows for i in ((o.get("warm") or {}).get("items") or [])]
            if not rows or not all(o.get("ok") for o in rows):
                failed.append(str(name))
            done = [i for i in items if i.get("status") == "installed"]
            saved_items += len(done)
            saved_seconds += sum(per_item.get((i["model"], i["version"], i["device"]), 0.0) for i in done)
            if any(i.get("fallback") for i in items):
                fell_back.append(str(name))
                now = sorted({str(i["class_key"]) for i in items if i.get("class_key") and i["class_key"] not in planned})
                if now:
                    moved.append(f"{name} is class {', '.join(now)} now")
            elif done:
                installed.append(str(name))
        parts = [head]
        if installed:
            parts.append(f"installed on {', '.join(installed)}")
        if fell_back:
            whose = "its" if len(moved) == 1 else "their"
            changed = f" ({', '.join(moved)}: {whose} class changed after the plan)" if moved else ""
            parts.append(f"compiled after a fallback on {', '.join(fell_back)}{changed}")
        if failed:
            parts.append(f"failed on {', '.join(failed)}")
        if not group.get("installers"):
            parts.append("no other host of this class")
        parts.extend(_hub_parts(builder, [w["relayed"] for w in built if w.get("relayed")]))
        parts.append(
            f"{saved_items} compile(s) saved"
            + (f", about {saved_seconds:.1f} s of compiling at the builder's time" if saved_seconds else "")
        )
        lines.append(f"class {group['class']} (store {group['store']}): " + "; ".join(parts))
    return lines


def _hub_parts(builder: str, copies: list[Mapping[str, Any]]) -> list[str]:
    """What the builder's copy up to a hub did, for the class line: failed, or what its prune removed."""
    parts = []
    if any(c.get("problems") for c in copies):
        parts.append(f"the copy up to the hub failed (see {builder}'s warm log)")
    pruned = [p for c in copies for p in ((c.get("pruned") or {}).get("sets") or [])]
    if any((c.get("pruned") or {}).get("problems") for c in copies):
        parts.append(f"pruning the hub failed (see {builder}'s warm log)")
    elif pruned:
        parts.append(f"{len(pruned)} old set(s) pruned from the hub")
    return parts
