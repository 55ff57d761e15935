"""The fleet inventory: one documented place that lists the inference hosts.

A TOML (or JSON) file, read by a task at run time, never when a DAG file is
parsed, so DAG files parse without it and without the network::

    [defaults]
    cache_dir = "/var/cache/openvino"
    repository = "/models"
    devices = ["CPU"]
    retain = "latest:2"              # version policy invalidation keeps

    [[hosts]]
    name = "infer-01"
    conn_id = "ovcache_infer_01"     # an ovcache connection with transport "ssh"
    labels = ["eu-west", "cpu"]
    lean = true                      # release it in one agent run (ovcache release)
    store = "/mnt/ovcache-store"     # compile once per hardware class, install on the others

    [[hosts]]
    name = "infer-02"
    conn_id = "ovcache_local"        # transport "local": the worker that runs the task
    queue = "infer-02"               # ... which is the host's own worker
    devices = ["CPU", "GPU"]

    [[hosts]]
    name = "shop-17"
    conn_id = "ovcache_local"
    executor = "EdgeExecutor"        # an edge worker on the host pulls its tasks over HTTPS; queue: its name

How a host is reached lives in its ``ovcache`` connection (SSH through an SSH
connection, or a local subprocess); where the task runs is its ``queue``. The
inventory says which host is which and what it holds; paths and devices here
override the connection's. ``conn_id`` defaults to ``ovcache_<name>`` with
dashes as underscores.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core import profile_options
from ..core.configfile import load_table
from ..core.errors import UsageError
from ..core.policy import VersionPolicy
from ..core.text import printable
from ..core.values import property_value, string_list

INVENTORY_ENV = "OVCACHE_INVENTORY"
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_KNOWN = {
    "name",
    "cache_dir",
    "repository",
    "devices",
    "labels",
    "conn_id",
    "queue",
    "executor",
    "retain",
    "properties",
    "serving_config",
    "profile",
    "loader",
    "loader_path",
    "model_class",
    "pipeline",
    "ovms_config",
    "ovms_path_map",
    "lean",
    "store",
    "builder",
    "store_relay",
    "store_hub",
    "store_hub_conn_id",
}
# A hub's URL: a scheme Airflow's object storage may know, then the bucket and prefix.
_HUB_URL = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$")


@dataclass(frozen=True)
class FleetHost:
    """One inference host of the inventory, with its defaults applied (see docs/fleet.md for each key).

    :param name: the host's name in the inventory, reports and task labels.
    :param cache_dir: the OpenVINO cache directory on the host (absolute).
    :param repository: the model repository on the host (absolute).
    :param conn_id: the ``ovcache`` connection that reaches it.
    :param devices: the devices whose blobs are managed.
    :param labels: labels a run selects hosts by.
    :param queue: the worker queue serving the host, for the DAGs that route by queue.
    :param retain: the version policy of what is kept (``latest:2``, ...).
    :param properties: OpenVINO compile properties the server uses.
    :param serving_config: the server's serving config file on the host.
    :param profile: how the host's server compiles (docs/serving-profiles.md).
    :param loader: an in-house loader's name, for the ``loader`` profile.
    :param loader_path: where that loader's code is on the host.
    :param model_class: the ``OVModelForXxx`` class the server loads with, for the ``optimum`` profile.
    :param pipeline: the pipeline the server constructs, for the ``genai`` profile (default ``LLMPipeline``).
    :param ovms_config: the OpenVINO Model Server config file on the host.
    :param ovms_path_map: server path prefix -> agent path prefix, where the server sees other paths.
    :param lean: release the host with one agent run (``ovcache release``) instead of one task per step.
    :param store: a blob store the host reaches (a directory there, absolute): hosts of one hardware
        class sharing it compile a release once and install it everywhere else.
    :param builder: with ``store``, prefer this host to compile for its class.
    :param store_relay: ``store`` is a directory on each host rather than one shared mount: the
        worker copies a class's sets from its builder's store into each installer's.
    :param store_hub: a hub in object storage (``s3://bucket/prefix``, any scheme Airflow's object
        storage knows): ``store`` is a directory on each host, the builder's sets go up to the hub
        and each installer's come down from it; hosts sharing a hub and a class compile once.
    :param store_hub_conn_id: the Airflow connection the hub is reached with (none: the scheme's
        default credentials).
    """

    name: str
    cache_dir: str
    repository: str
    conn_id: str = ""
    devices: tuple[str, ...] = ("CPU",)
    labels: tuple[str, ...] = ()
    queue: str | None = None
    # Airflow executor of the host's tasks when several are configured (an edge host: "EdgeExecutor").
    executor: str | None = None
    retain: str = "latest:2"
    properties: dict[str, str] = field(default_factory=dict)
    serving_config: str | None = None
    # How the host's server compiles (docs/serving-profiles.md).
    profile: str | None = None
    loader: str | None = None
    loader_path: str | None = None
    model_class: str | None = None
    pipeline: str | None = None
    ovms_config: str | None = None
    ovms_path_map: dict[str, str] = field(default_factory=dict)
    # One agent run per release instead of one task per step (docs/fleet.md, "The lean path").
    lean: bool = False
    # Compile once per hardware class and install elsewhere (docs/fleet.md, "The blob store and installs").
    store: str | None = None
    builder: bool = False
    store_relay: bool = False
    store_hub: str | None = None
    store_hub_conn_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The host as plain JSON (lists, not tuples), for XCom and task arguments."""
        data = asdict(self)
        data["devices"] = list(self.devices)
        data["labels"] = list(self.labels)
        return data


@dataclass
class Fleet:
    """The inventory: its hosts, and where it was read from (for messages).

    :param hosts: the hosts, in the inventory's order.
    :param source: the inventory's path, named in every error about it.
    """

    hosts: list[FleetHost]
    source: str = ""

    def select(self, names: list[str] | None = None, labels: list[str] | None = None) -> list[FleetHost]:
        """Hosts by name and/or label; naming a host the inventory lacks is an error, not an empty run.

        :param names: the hosts to keep; None or empty keeps all.
        :param labels: labels every kept host must carry; None or empty keeps all.
        :raises UsageError: a name is not in the inventory.
        """
        chosen = self.hosts
        if names:
            known = {h.name for h in self.hosts}
            unknown = [n for n in names if n not in known]
            if unknown:
                raise UsageError(
                    f"host(s) {', '.join(unknown)} not in the fleet inventory {self.source}",
                    hint=f"known hosts: {', '.join(sorted(known))}",
                )
            chosen = [h for h in chosen if h.name in names]
        if labels:
            chosen = [h for h in chosen if set(labels) <= set(h.labels)]
        return chosen

    def host(self, name: str) -> FleetHost:
        """The host called ``name``.

        :param name: a host name of the inventory.
        :raises UsageError: there is no such host.
        """
        return self.select([name])[0]


def load_fleet(path: str | os.PathLike[str] | None = None) -> Fleet:
    """Read and validate the inventory; every mistake is one line naming the host and the key.

    :param path: the inventory file (TOML); defaults to ``$OVCACHE_INVENTORY``.
    :raises UsageError: no inventory is given, or it is not valid.
    """
    source = Path(path or os.environ.get(INVENTORY_ENV) or "")
    if not str(source) or str(source) == ".":
        raise UsageError("no fleet inventory given", hint=f"set ${INVENTORY_ENV} or pass the inventory path")
    data = load_table(source, "fleet inventory", hint=f"set ${INVENTORY_ENV} to the inventory file")
    return parse_fleet(data, str(source))


def parse_fleet(data: dict[str, Any], source: str = "<inventory>") -> Fleet:
    """Validate an inventory table: every key with its type, never coerced (a label string is not a label list).

    :param data: the inventory as read from its file (``[defaults]`` and ``[[hosts]]``).
    :param source: where it came from, for the messages.
    :raises UsageError: naming the host and the key at fault.
    """
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list) or not data["hosts"]:
        raise UsageError(f"fleet inventory {source} lists no [[hosts]]")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise UsageError(f"fleet inventory {source}: [defaults] must be a table")
    unknown = set(defaults) - (_KNOWN - {"name"})
    if unknown:
        raise UsageError(f"fleet inventory {source}: unknown default(s) {', '.join(sorted(unknown))}")
    hosts: list[FleetHost] = []
    for index, raw in enumerate(data["hosts"]):
        if not isinstance(raw, dict):
            raise UsageError(f"fleet inventory {source}: hosts entry {index + 1} is not a table ([[hosts]])")
        name = raw.get("name", "")
        if not isinstance(name, str) or not _HOST_NAME.match(name):
            raise UsageError(f"fleet inventory {source}: host name {printable(repr(name))} is not a plain host name")
        bad = set(raw) - _KNOWN
        if bad:
            raise UsageError(f"fleet inventory {source}: host {name}: unknown key(s) {', '.join(sorted(map(str, bad)))}")
        hosts.append(_host(name, {**defaults, **raw}, defaults, raw, source))
    names = [h.name for h in hosts]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UsageError(f"fleet inventory {source}: host(s) listed twice: {', '.join(duplicates)}")
    return Fleet(hosts, source)


def _host(name: str, merged: dict[str, Any], defaults: dict[str, Any], raw: dict[str, Any], source: str) -> FleetHost:
    def fail(key: str, why: str, fix: str | None = None) -> UsageError:
        return UsageError(
            f"fleet inventory {source}: host {name}: {key} {why}",
            hint=f"{fix or f'fix {key}'} for host {name} (or in [defaults])",
        )

    def text(key: str, default: str | None = None) -> str | None:
        value = merged.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise fail(key, f"must be a string, not {value!r}")
        return value

    for key in ("cache_dir", "repository"):
        value = text(key)
        if not value:
            raise UsageError(f"fleet inventory {source}: host {name} has no {key} (set it on the host or in [defaults])")
        if not value.startswith("/"):
            raise UsageError(f"fleet inventory {source}: host {name}: {key} must be an absolute path on the host")
    try:
        devices = string_list(merged.get("devices") or ["CPU"], split_commas=True)
    except ValueError as exc:
        raise fail("devices", f"is not a device list: {exc}") from None
    try:
        labels = string_list(merged.get("labels") or [])
    except ValueError as exc:
        raise fail("labels", f"is not a list of labels: {exc}") from None
    properties: dict[str, str] = {}
    for section in (defaults.get("properties"), raw.get("properties")):
        if section is None:
            continue
        if not isinstance(section, dict):
            raise fail("properties", "must be a table of KEY = VALUE")
        for key, value in section.items():
            try:
                properties[str(key)] = property_value(value)
            except ValueError as exc:
                raise fail(f"properties.{key}", str(exc)) from None
    profile = text("profile")
    model_class, pipeline = text("model_class"), text("pipeline")
    found = profile_options.problem(profile, {"model_class": model_class, "pipeline": pipeline})
    if found and found.kind == "profile":
        raise fail(
            "profile",
            f"must be {profile_options.one_of(profile_options.NAMED_PROFILES)}, not {profile!r} (for OpenVINO Model Server set ovms_config)",
        )
    if found and found.kind == "missing":
        raise fail("profile", found.missing_text, f"set {found.key}")
    if found and found.kind == "misplaced":
        raise fail(
            found.key,
            f"is the {found.owner} profile's, but profile is {profile or 'not set (openvino)'}: "
            f'set profile = "{found.owner}" beside it, or remove {found.key}',
        )
    if found:
        raise fail(found.key, found.unknown_text)
    path_map = merged.get("ovms_path_map") or {}
    if not isinstance(path_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k.startswith("/") and v.startswith("/") for k, v in path_map.items()
    ):
        raise fail(
            "ovms_path_map", 'must be a table of absolute server path = absolute agent path, e.g. {"/models" = "/srv/models"}'
        )
    flags = {}
    for key in ("lean", "builder", "store_relay"):
        flags[key] = merged.get(key, False)
        if not isinstance(flags[key], bool):
            raise fail(key, f"must be true or false, not {flags[key]!r}")
    store = text("store")
    if store and not store.startswith("/"):
        raise fail("store", "must be an absolute path on the host (the blob store directory as the host reaches it)")
    for key in ("builder", "store_relay", "store_hub", "store_hub_conn_id"):
        if merged.get(key) and not store:
            raise fail(key, "needs a store (set store on the host or in [defaults])")
    hub = text("store_hub")
    if hub and not _HUB_URL.match(hub):
        raise fail(
            "store_hub",
            f"must be an object-storage URL such as s3://bucket/ovcache, not {hub!r}",
            "set store_hub to the hub's URL (a store every host mounts is store alone)",
        )
    hub_conn = text("store_hub_conn_id")
    if hub_conn and not hub:
        raise fail("store_hub_conn_id", "needs a store_hub (the hub that connection reaches)")
    # A host whose server is OVMS keeps what its config.json's version policies serve, unless told otherwise.
    retain = text("retain", "" if text("ovms_config") else "latest:2") or ""
    try:
        if retain:
            VersionPolicy.parse(retain)
    except UsageError as exc:
        raise fail("retain", f"is not a version policy: {exc.message}") from None
    return FleetHost(
        name=name,
        cache_dir=str(text("cache_dir")),
        repository=str(text("repository")),
        conn_id=text("conn_id") or "ovcache_" + name.replace("-", "_").replace(".", "_"),
        devices=tuple(devices),
        labels=tuple(labels),
        # A host served by another executor's worker (an edge worker) is routed by queue, its own by default.
        queue=text("queue") or (name if text("executor") else None),
        executor=text("executor"),
        retain=retain,
        properties=properties,
        serving_config=text("serving_config"),
        profile=profile,
        loader=text("loader"),
        loader_path=text("loader_path"),
        model_class=model_class,
        pipeline=pipeline,
        ovms_config=text("ovms_config"),
        ovms_path_map=dict(path_map),
        lean=flags["lean"],
        store=store,
        builder=flags["builder"],
        store_relay=flags["store_relay"],
        store_hub=hub,
        store_hub_conn_id=hub_conn,
    )
