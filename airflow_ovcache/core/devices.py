"""Devices on this host and whether OpenVINO can cache compiled models for them.

A device caches only if its plugin reports ``EXPORT_IMPORT`` among its
optimization capabilities; one that does not writes no blob and raises
nothing, so we must ask before warming, not infer from silence afterwards.

A device's *hardware class* (:func:`hardware_class`) names everything a blob
depends on besides the model and the compile call: hosts whose devices have
equal class keys can share blobs for the same spec, profile and model files.
It is computed only when asked (:func:`classify`, by ``ovcache devices``):
on CPU it needs the instruction set, which only a compiled blob tells, and a
warm must not pay for that probe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..protocol.location import Location
from . import trace
from .errors import UnknownDevice, UnknownProperty, openvino_message

# Devices that pick or split over other devices; a blob is made by the device
# they delegate to, so warming must name that device instead.
VIRTUAL_DEVICES = {"AUTO", "MULTI", "HETERO", "BATCH"}


@dataclass
class DeviceInfo:
    """What warming needs to know about one device: its identity, capabilities and settable properties.

    ``can_cache`` is the deciding fact (the plugin reports ``EXPORT_IMPORT``);
    ``properties`` maps each supported property to ``RO`` or ``RW`` so a spec's
    properties can be refused before compiling. A virtual device has
    ``device_type="virtual"`` and no properties of its own. ``class_key`` and
    ``class_parts`` (the :class:`HardwareClass`) are filled only by :func:`classify`:
    a warm does not pay for the CPU's instruction-set probe.
    """

    name: str
    full_name: str
    architecture: str | None
    device_type: str | None
    capabilities: list[str] = field(default_factory=list)
    can_cache: bool = False
    properties: dict[str, str] = field(default_factory=dict)  # name -> RO/RW
    class_key: str | None = None  # set by :func:`classify`
    class_parts: dict[str, str] = field(default_factory=dict)  # what the class key was made from

    def to_json(self) -> dict[str, Any]:
        """The device as the agent's ``devices`` command reports it (every field, as is)."""
        return asdict(self)


def _core(core: Any | None) -> Any:
    if core is not None:
        return core
    import openvino as ov

    return ov.Core()


def available(core: Any | None = None) -> list[str]:
    """The device names OpenVINO sees on this host (``CPU``, ``GPU.0``...), virtual devices not included.

    :param core: an ``openvino.Core`` to ask; ``None`` makes one (and imports OpenVINO).
    """
    return list(_core(core).available_devices)


def _prop(core: Any, device: str, name: str) -> Any:
    try:
        return core.get_property(device, name)
    except Exception:  # noqa: BLE001 - a plugin may not implement every read-only property
        return None


@trace.traced("devices.describe")
def describe(device: str, core: Any | None = None, where: Location | None = None) -> DeviceInfo:
    """Everything we need to know about one device; raises :class:`UnknownDevice` if it is not here.

    A virtual device (AUTO, MULTI, HETERO, BATCH) is described through the devices it runs on.

    :param device: the device name as a spec gives it (``CPU``, ``GPU.1``, ``HETERO:GPU,CPU``).
    :param core: an ``openvino.Core`` to ask; ``None`` makes one.
    :param where: host/model/version for the error, merged with this device.
    """
    core = _core(core)
    where = (where or Location()).merged(Location(device=device))
    base = device.split(":", 1)[0].split(".", 1)[0].upper()
    present = available(core)
    if base in VIRTUAL_DEVICES:
        return _describe_virtual(device, base, core, present, where)
    if device not in present and base not in {d.split(".", 1)[0] for d in present}:
        raise UnknownDevice(device, present, where)
    try:
        full_name = str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception as exc:  # noqa: BLE001
        raise UnknownDevice(device, present, where) from exc
    capabilities = [str(c) for c in (_prop(core, device, "OPTIMIZATION_CAPABILITIES") or [])]
    supported = _prop(core, device, "SUPPORTED_PROPERTIES") or {}
    device_type = _prop(core, device, "DEVICE_TYPE")
    return DeviceInfo(
        name=device,
        full_name=full_name,
        architecture=_str_or_none(_prop(core, device, "DEVICE_ARCHITECTURE")),
        device_type=str(device_type).rsplit(".", 1)[-1] if device_type is not None else None,
        capabilities=capabilities,
        can_cache="EXPORT_IMPORT" in capabilities,
        properties={str(k): str(v) for k, v in dict(supported).items()},
    )


def underlying_devices(device: str, present: list[str]) -> list[str]:
    """The physical devices a virtual one runs on: ``BATCH:CPU(4)`` on CPU, ``HETERO:GPU,CPU`` on both, bare ``AUTO`` on all.

    :param device: the virtual device name with its optional ``:list``.
    :param present: the devices on this host, used when the name lists none.
    """
    _, sep, rest = device.partition(":")
    if not sep or not rest.strip():
        return list(present)
    names = []
    for part in rest.split(","):
        name = part.split("(", 1)[0].strip()
        if name:
            names.append(name)
    return names


def _describe_virtual(device: str, base: str, core: Any, present: list[str], where: Location) -> DeviceInfo:
    """A virtual device (AUTO, MULTI, HETERO, BATCH) caches when every device it runs on can.

    Its load may write a blob per device (BATCH writes two for one CPU model), which
    the agent publishes and verifies as one entry. Its properties are checked by
    OpenVINO at compile time: they belong to the devices underneath as much as to it.
    """
    parts = [describe(name, core, where) for name in underlying_devices(device, present)]
    if not parts:
        raise UnknownDevice(device, present, where)
    return DeviceInfo(
        name=device,
        full_name=f"{base} over " + ", ".join(p.full_name for p in parts),
        architecture=None,
        device_type="virtual",
        capabilities=sorted(set.intersection(*(set(p.capabilities) for p in parts))),
        can_cache=all(p.can_cache for p in parts),
        properties={},
    )


def describe_all(core: Any | None = None) -> list[DeviceInfo]:
    """Every device on this host, described, for the agent's ``devices`` command.

    :param core: an ``openvino.Core`` to ask; ``None`` makes one.
    """
    core = _core(core)
    return [describe(name, core) for name in available(core)]


# The properties every device's class records by name, whatever its plugin lists in CACHING_PROPERTIES.
CLASS_PROPERTIES = ("FULL_DEVICE_NAME", "DEVICE_ARCHITECTURE")
CLASS_DIGEST_CHARS = 16  # 64 bits of SHA-256: no two classes of any real fleet collide


@dataclass(frozen=True)
class HardwareClass:
    """A device's hardware class: a short stable key and the readable parts it was made from.

    :param key: ``<device type>-<first 16 hex digits of SHA-256 over the parts>``, e.g. ``cpu-3f1c...``.
    :param parts: the values the key hashes: ``device``, ``runtime``, ``isa`` (CPU), and OpenVINO
        property names (``FULL_DEVICE_NAME``, ``DEVICE_ARCHITECTURE``, each of ``CACHING_PROPERTIES``)
        to their values as text.
    """

    key: str
    parts: dict[str, str]


def device_type_of(device: str) -> str:
    """The plugin a device name belongs to: ``GPU.1`` -> ``GPU``, ``HETERO:GPU,CPU`` -> ``HETERO``.

    :param device: an OpenVINO device name.
    """
    return device.split(":", 1)[0].split(".", 1)[0].split("(", 1)[0].strip().upper()


def hardware_class(device_type: str, runtime: str, properties: Mapping[str, Any], isa: str | None = None) -> HardwareClass:
    """The class key of a device from the values queried on it; a pure function, so it is testable without the device.

    Everything a blob depends on besides the model and the call goes in: the
    runtime build (a blob of another build is rejected and recompiled), the
    instruction set the CPU plugin writes into the blob header (checked on
    import), and the device properties the plugin hashes into the blob name
    (``CACHING_PROPERTIES``, which on GPU and NPU include the architecture and
    driver-dependent values). Names and values are hashed as sorted JSON, so
    the key does not depend on the order the plugin lists them in.

    :param device_type: the plugin (``CPU``, ``GPU``, ``NPU``, or a virtual device's name).
    :param runtime: the OpenVINO build, as ``openvino.get_version()`` returns it.
    :param properties: property name to queried value; None values (unreadable) are left out.
    :param isa: the CPU plugin's instruction set from a blob header, None elsewhere.
    """
    kind = device_type_of(device_type)
    parts = {"device": kind, "runtime": str(runtime)}
    if isa is not None:
        parts["isa"] = str(isa)
    for name, value in properties.items():
        if value is not None:
            parts[str(name)] = _property_text(value)
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:CLASS_DIGEST_CHARS]
    return HardwareClass(f"{kind.lower()}-{digest}", dict(sorted(parts.items())))


def class_properties(device: str, core: Any | None = None) -> dict[str, Any]:
    """The device properties a class key records: :data:`CLASS_PROPERTIES` and every one in ``CACHING_PROPERTIES``.

    A read-write caching property is recorded at the plugin's default: a call
    that sets it has it in its spec; one that does not compiles with this value.

    :param device: a physical device name (``CPU``, ``GPU.0``).
    :param core: an ``openvino.Core`` to ask (default a new one).
    """
    core = _core(core)
    names = list(CLASS_PROPERTIES) + [str(name) for name in dict(_prop(core, device, "CACHING_PROPERTIES") or {})]
    return {name: _prop(core, device, name) for name in dict.fromkeys(names)}


def classify(info: DeviceInfo, core: Any | None = None, facts_path: Path | None = None) -> DeviceInfo:
    """``info`` with its hardware class filled in.

    On CPU the instruction set comes from :func:`.hostfacts.host_isa`: a one-node
    probe compile read from its blob header, remembered in ``facts_path`` (a cache
    directory's host facts) per runtime build and CPU signature. A virtual
    device's class is made from the classes of the devices it runs on.

    :param info: the device as :func:`describe` returned it.
    :param core: an ``openvino.Core`` to ask (default a new one).
    :param facts_path: the host facts file to read the ISA from and record it in; None probes.
    """
    from . import hostfacts

    core = _core(core)
    runtime = hostfacts.runtime_build(facts_path)
    kind = device_type_of(info.name)
    if info.device_type == "virtual":
        under = [classify(describe(name, core), core, facts_path) for name in underlying_devices(info.name, available(core))]
        found = hardware_class(kind, runtime, {"over": " ".join(str(u.class_key) for u in under)})
    else:
        isa = hostfacts.host_isa(facts_path) if kind == "CPU" else None
        found = hardware_class(kind, runtime, class_properties(info.name, core), isa)
    return replace(info, class_key=found.key, class_parts=found.parts)


def _property_text(value: Any) -> str:
    """A property value as stable text: enums by their name, containers as sorted JSON."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    name = getattr(value, "name", None)
    if isinstance(name, str) and not isinstance(value, str):
        return name
    return str(value)


def check_properties(info: DeviceInfo, properties: dict[str, str], where: Location | None = None) -> None:
    """Refuse a property the device does not know or cannot set, before compiling anything.

    Raises :class:`UnknownProperty`; a virtual device's properties are left to OpenVINO.

    :param info: the device, as :func:`describe` found it.
    :param properties: the spec's compile properties.
    :param where: host/model/version for the error.
    """
    if info.device_type == "virtual":
        return  # OpenVINO checks them at compile time, against the devices underneath too
    for key in properties:
        mode = info.properties.get(key)
        if mode is None or mode == "RO":
            raise UnknownProperty(key, info.name, where)


def compile_error(exc: BaseException, where: Location) -> Exception:
    """Classify an OpenVINO compile exception into an error a user can act on.

    The error is returned, not raised, so the caller raises it ``from`` the original.

    :param exc: what ``compile_model`` or ``read_model`` raised.
    :param where: host/model/version/device for the message.
    """
    from .errors import CompileFailed, ModelUnreadable

    text = openvino_message(exc)
    lowered = str(exc).lower()
    if "unable to read the model" in lowered or "cannot create" in lowered and "frontend" in lowered:
        return ModelUnreadable(f"OpenVINO cannot read the model: {text}", where)
    if "unsupported property" in lowered or "notfound" in lowered and "property" in lowered:
        return UnknownProperty(text, where.device or "?", where)
    return CompileFailed(f"compile failed: {text}", where)


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)
