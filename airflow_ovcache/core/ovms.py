"""OpenVINO Model Server's compile, reproduced, so a warm-up writes the blob OVMS reads.

OVMS does not call ``compile_model(path)``: it reads the model, rebuilds it through a
``PrePostProcessor`` that puts a layout on every input and output, reshapes it when the
configuration asks, and compiles the resulting model *object*. The blob name of a
by-object compile hashes the graph, so only a warm-up that rebuilds the same graph with
the same device and properties writes the blob OVMS looks for (DESIGN.md fact 11).

Everything here follows openvinotoolkit/model_server at commit ``7e4df0c7ae34`` of
``main`` (2026-08-21, ``PRODUCT_VERSION`` 2026.4.0, built against OpenVINO 2026.4.0);
the files used are byte-identical to tag ``v2026.3`` (there is no 2026.4 tag in the
snapshot read). Each function names the OVMS source it reproduces. The code is ours; OVMS
itself cannot be installed on the machines this was written on, so the tests reproduce
its calls with OpenVINO directly. ``docs/serving-profiles.md`` walks through every step
and lists what is not reproduced.

The module imports only the standard library; OpenVINO is imported inside the functions
that compile, so the config reader runs on a host (or an Airflow worker) without it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.protocol.location import Location

#: The OVMS release whose source this module follows (see the module docstring).
OVMS_SOURCE = "openvinotoolkit/model_server main@7e4df0c7ae34 (2026.4.0; same files as v2026.3)"

PluginValue = str | int | float | bool | dict[str, dict[str, str | int | float | bool]]

# src/schema.cpp, MODELS_CONFIG_SCHEMA: the top-level keys OVMS accepts.
_TOP_KEYS = frozenset(
    {
        "model_config_list",
        "custom_loader_config_list",
        "pipeline_config_list",
        "mediapipe_config_list",
        "custom_node_library_config_list",
        "monitoring",
    }
)
# src/schema.cpp, MODEL_CONFIG_DEFINITION: the keys of one model's "config" object.
_MODEL_KEYS = frozenset(
    {
        "name",
        "base_path",
        "batch_size",
        "graph_path",
        "subconfig",
        "model_version_policy",
        "shape",
        "layout",
        "nireq",
        "target_device",
        "allow_cache",
        "plugin_config",
        "custom_loader_options",
    }
)
# src/filesystem/filesystem.hpp, FileSystem::isLocalFilesystem: remote repositories.
_REMOTE_PREFIXES = ("s3://", "gs://", "azfs://", "azure://")
# src/modelinstance.hpp: the model file kinds, in the order fetchModelFilepaths tries them.
_MODEL_FILE_KINDS: tuple[tuple[str, ...], ...] = (
    (".xml", ".bin"),
    (".onnx",),
    (".pdmodel", ".pdiparams"),
    (".pb",),
    (".tflite",),
)
# src/layout.cpp, Layout::ALLOWED_DIMENSION_LETTERS_AND_CHARS (+ ':' of layout_configuration.cpp).
_LAYOUT_LETTERS = "NCHWD"
_LAYOUT_CHARS = set(_LAYOUT_LETTERS + ".?")
# src/anonymous_input_name.cpp: the key OVMS files a single-string shape under.
ANONYMOUS_INPUT = "ANONYMOUS_INPUT_NAME"
# src/modelinstance.cpp, TYPED_PLUGIN_CONFIG_NORMALIZATION_RULES.
_INT64_KEYS = ("INFERENCE_NUM_THREADS", "AUTO_BATCH_TIMEOUT")
_BOOL_KEYS = ("ENABLE_CPU_PINNING",)


@dataclass(frozen=True)
class OvmsModel:
    """One ``model_config_list`` entry, validated, in the terms OVMS compiles with.

    ``base_path`` is the path as the *server* sees it (OVMS in a container sees
    ``/models``); ``local_base_path`` is where the agent finds the same files. OVMS
    compiles the model object, whose blob name hashes the graph and not the path, so a
    different mount point does not change the blob; the server path is kept for reports
    and for anything that compiles by path.

    ``target_device`` is ``None`` when the config does not name one: since 2026.3 OVMS
    then picks a device itself (:func:`resolve_target_device`).

    ``plugin_config`` holds the values as OVMS's JSON parser hands them to OpenVINO
    (``src/json_parser.cpp``, ``JsonParser::parsePluginConfig``): strings stay strings,
    JSON integers, floats and booleans keep their type, ``NUM_STREAMS`` is always a
    string, and the deprecated ``CPU_THROUGHPUT_STREAMS``/``GPU_THROUGHPUT_STREAMS``/
    ``CPU_THREADS_NUM`` keys are already renamed.

    ``shape`` is ``None``, a string for every input (``"(1,3,224,224)"`` or ``"auto"``)
    or a per-input dict of such strings or lists of dimensions; ``layout`` is ``None``,
    one string for the single input, or a per-input/output dict, each normalised the way
    OVMS does (upper case, no spaces; ``"NHWC:NCHW"`` means tensor layout NHWC over model
    layout NCHW). ``batch_size`` is ``None``, a positive int, or a dimension string
    (``"auto"``, ``"1:8"``, ``"-1"``). ``ignored`` names what OVMS reads but does not let
    change the compile.
    """

    name: str
    base_path: str
    local_base_path: str = ""
    config_path: str = ""
    target_device: str | None = None
    plugin_config: dict[str, PluginValue] = field(default_factory=dict)
    shape: str | dict[str, str | list[int]] | None = None
    batch_size: int | str | None = None
    layout: str | dict[str, str] | None = None
    model_version_policy: dict[str, Any] = field(default_factory=lambda: {"latest": {"num_versions": 1}})
    allow_cache: bool = False
    nireq: int | None = None
    ignored: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types with sorted keys, so the same model always records the same spec."""
        return json.loads(
            json.dumps(
                {
                    "name": self.name,
                    "base_path": self.base_path,
                    "local_base_path": self.local_base_path,
                    "config_path": self.config_path,
                    "target_device": self.target_device,
                    "plugin_config": self.plugin_config,
                    "shape": self.shape,
                    "batch_size": self.batch_size,
                    "layout": self.layout,
                    "model_version_policy": self.model_version_policy,
                    "allow_cache": self.allow_cache,
                    "nireq": self.nireq,
                    "ignored": list(self.ignored),
                },
                sort_keys=True,
            )
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OvmsModel:
        """The inverse of :meth:`to_json` (a manifest spec read back).

        :param data: the ``profile_options`` of an ``ovms`` spec.
        """
        return cls(
            name=str(data["name"]),
            base_path=str(data["base_path"]),
            local_base_path=str(data.get("local_base_path", "")),
            config_path=str(data.get("config_path", "")),
            target_device=data.get("target_device"),
            plugin_config=dict(data.get("plugin_config") or {}),
            shape=data.get("shape"),
            batch_size=data.get("batch_size"),
            layout=data.get("layout"),
            model_version_policy=dict(data.get("model_version_policy") or {"latest": {"num_versions": 1}}),
            allow_cache=bool(data.get("allow_cache", False)),
            nireq=data.get("nireq"),
            ignored=tuple(data.get("ignored") or ()),
        )


@dataclass(frozen=True)
class NotManaged:
    """A config entry OVMS serves but this project does not warm, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class OvmsConfig:
    """What :func:`read_ovms_config` found: the models to warm and the entries left alone."""

    path: str
    models: list[OvmsModel]
    not_managed: list[NotManaged]


@dataclass(frozen=True)
class ContainerCpu:
    """What OVMS measures about its container before a CPU compile.

    In a container (``/.dockerenv``, ``/run/.containerenv``, or ``docker``/``kubepods`` in
    ``/proc/self/cgroup``) OVMS adds CPU properties of its own (``src/ov_utils.cpp``,
    ``applyDefaultCpuProperties``; ``src/systeminfo.cpp``). The agent usually runs outside
    that container, so it cannot measure them; the fleet inventory states them.
    ``cores`` is OVMS's core count (the CPU affinity count, capped by the quota),
    ``cpu_quota`` the cgroup quota in whole CPUs (0: none).
    """

    cores: int
    physical_cores_per_socket: int
    sockets: int = 1
    cpu_quota: int = 0


# --------------------------------------------------------------------------- config.json


def _fail(config: str, model: str | None, message: str, hint: str) -> UsageError:
    where = f"{config}" + (f", model {model}" if model else "")
    return UsageError(f"OVMS config {where}: {message}", hint=hint, where=Location(model=model))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _layout_ok(text: str) -> bool:
    """``src/layout.cpp``, ``Layout::validate``: letters once each, at most one whole ``...``."""
    if any(c not in _LAYOUT_CHARS for c in text):
        return False
    if any(text.count(c) > 1 for c in _LAYOUT_LETTERS):
        return False
    dots = re.findall(r"\.+", text)
    return len(dots) <= 1 and all(d == "..." for d in dots)


def _parse_layout(text: str, config: str, model: str, key: str) -> str:
    """``src/layout_configuration.cpp``, ``LayoutConfiguration::fromString``; returns OVMS's form."""
    norm = re.sub(r"\s+", "", text).upper()
    parts = norm.split(":")
    if not norm or len(parts) > 2 or not all(_layout_ok(p) for p in parts) or not all(parts):
        raise _fail(
            config,
            model,
            f"layout {key}={text!r} is not an OVMS layout",
            'write letters N, C, H, W, D, "?" or one "...", optionally "TENSOR:MODEL" (e.g. "NHWC:NCHW")',
        )
    return norm


def _dimension_ok(token: str) -> bool:
    """``src/shape.cpp``, ``Dimension::fromString`` (a count, ``-1`` for any, ``min:max``)."""
    if re.fullmatch(r"-1|0|[1-9][0-9]*", token):
        return True
    m = re.fullmatch(r"([1-9][0-9]*):([1-9][0-9]*)", token)
    return m is not None and int(m.group(1)) <= int(m.group(2))


def _parse_shape_string(text: str, config: str, model: str, key: str) -> str:
    """``src/shape.cpp``, ``Shape::fromString``: ``(d,d,...)``; ``auto`` is OVMS's own keyword."""
    if text == "auto":
        return text
    norm = re.sub(r"\s+", "", text)
    if not (norm.startswith("(") and norm.endswith(")")) or len(norm) <= 2:
        raise _fail(
            config, model, f"shape {key}={text!r} is not an OVMS shape", 'write "(1,3,224,224)"; -1 for any, "1:8" for a range'
        )
    dims = norm[1:-1].split(",")
    if not all(_dimension_ok(d) for d in dims):
        raise _fail(
            config,
            model,
            f"shape {key}={text!r} has a bad dimension",
            "each dimension is a count, -1, or min:max with 0 < min <= max",
        )
    return "(" + ",".join(dims) + ")"


def _parse_plugin_config(value: Any, config: str, model: str) -> dict[str, PluginValue]:
    """``src/json_parser.cpp``, ``JsonParser::parsePluginConfig``: types kept, old keys renamed."""
    if not isinstance(value, dict):
        raise _fail(config, model, "plugin_config is not an object", 'write {"KEY": "value", ...}')

    def scalar(key: str, v: Any) -> str | int | float | bool:
        if isinstance(v, (bool, str)):
            out: str | int | float | bool = v
        elif _is_int(v):
            if not -(2**63) <= v < 2**63:
                raise _fail(config, model, f"plugin_config {key}={v} does not fit a 64-bit integer", "use a smaller number")
            out = v
        elif isinstance(v, float) and math.isfinite(v):
            out = v
        else:
            raise _fail(
                config,
                model,
                f"plugin_config {key} is a {type(v).__name__}",
                "plugin_config values are strings, numbers or booleans",
            )
        if key == "NUM_STREAMS" and not isinstance(out, str):
            # OVMS always hands NUM_STREAMS over as a string (GPU rejects an int64 there).
            return ("true" if out else "false") if isinstance(out, bool) else (str(out) if _is_int(out) else f"{out:.6f}")
        return out

    result: dict[str, PluginValue] = {}
    for key, v in value.items():
        if key == "DEVICE_PROPERTIES" and isinstance(v, dict):
            devices: dict[str, dict[str, str | int | float | bool]] = {}
            for device, props in v.items():
                if not isinstance(props, dict):
                    raise _fail(
                        config,
                        model,
                        f"plugin_config DEVICE_PROPERTIES.{device} is not an object",
                        'write {"CPU": {"KEY": "value"}}',
                    )
                devices[device] = {k: scalar(k, p) for k, p in props.items()}
            result[key] = devices
            continue
        item = scalar(key, v)
        if key in ("CPU_THROUGHPUT_STREAMS", "GPU_THROUGHPUT_STREAMS"):
            if item in ("CPU_THROUGHPUT_AUTO", "GPU_THROUGHPUT_AUTO"):
                result["PERFORMANCE_HINT"] = "THROUGHPUT"
            elif isinstance(item, str):
                result["NUM_STREAMS"] = item
            elif _is_int(item):
                result["NUM_STREAMS"] = str(item)
            elif isinstance(item, float):
                result["NUM_STREAMS"] = f"{item:.6f}"
            else:
                result[key] = item
        elif key == "CPU_THREADS_NUM" and isinstance(item, str):
            result["INFERENCE_NUM_THREADS"] = item
        else:
            result[key] = item
    return result


def _parse_version_policy(value: Any, config: str, model: str) -> dict[str, Any]:
    """``src/schema.cpp`` (model_version_policy) and ``ModelConfig::parseModelVersionPolicy``."""
    hint = 'use {"latest": {"num_versions": N}}, {"specific": {"versions": [1, 2]}} or {"all": {}}'
    if not isinstance(value, dict) or len(value) != 1:
        raise _fail(config, model, "model_version_policy must be an object with exactly one of latest, specific, all", hint)
    kind, body = next(iter(value.items()))
    if not isinstance(body, dict):
        raise _fail(config, model, f"model_version_policy.{kind} is not an object", hint)
    if kind == "all":
        if body:
            raise _fail(config, model, f"model_version_policy.all takes no keys, got {sorted(body)}", hint)
        return {"all": {}}
    if kind == "latest":
        if set(body) != {"num_versions"}:
            raise _fail(config, model, f"model_version_policy.latest takes only num_versions, got {sorted(body)}", hint)
        n = body["num_versions"]
        if not _is_int(n):
            raise _fail(config, model, f"model_version_policy.latest.num_versions is {n!r}, not an integer", hint)
        if n < 1:
            raise _fail(config, model, f"model_version_policy.latest.num_versions is {n}", "num_versions must be 1 or more")
        return {"latest": {"num_versions": n}}
    if kind == "specific":
        if set(body) != {"versions"}:
            raise _fail(config, model, f"model_version_policy.specific takes only versions, got {sorted(body)}", hint)
        versions = body["versions"]
        if not isinstance(versions, list):
            raise _fail(
                config, model, f"model_version_policy.specific.versions is {versions!r}, not a list", 'write "versions": [1, 2]'
            )
        for v in versions:
            if not _is_int(v):
                raise _fail(
                    config,
                    model,
                    f"model_version_policy.specific.versions holds {v!r}, not an integer",
                    'write "versions": [1, 2]',
                )
            if v < 1:
                raise _fail(config, model, f"model_version_policy.specific.versions holds {v}", "versions are positive integers")
        return {"specific": {"versions": sorted(set(versions))}}
    raise _fail(config, model, f"model_version_policy has unknown kind {kind!r}", hint)


def _map_path(server_path: str, path_map: Mapping[str, str] | None) -> str | None:
    """The agent-side path of a server path: the longest matching prefix wins."""
    if not path_map:
        return server_path
    p = PurePosixPath(server_path)
    best: tuple[int, str] | None = None
    for server_prefix, agent_prefix in path_map.items():
        sp = PurePosixPath(server_prefix)
        if p == sp or sp in p.parents:
            rel = p.relative_to(sp)
            cand = str(PurePosixPath(agent_prefix) / rel) if str(rel) != "." else str(PurePosixPath(agent_prefix))
            if best is None or len(sp.parts) > best[0]:
                best = (len(sp.parts), cand)
    return best[1] if best else None


def _unmap_path(agent_path: str, path_map: Mapping[str, str] | None) -> str:
    """The server-side path of an agent path (for relative ``base_path`` resolution)."""
    if not path_map:
        return agent_path
    reverse = {a: s for s, a in path_map.items()}
    return _map_path(agent_path, reverse) or agent_path


def _is_graph(local_base: str) -> bool:
    """``src/modelmanager.cpp``, ``ConfigLoader::loadModels`` and ``CheckStartFromGraph``.

    An entry of ``model_config_list`` whose folder holds ``graph.pbtxt`` (directly or in
    ``1/``, the model-mesh layout) is served as a MediaPipe graph; LLM, embeddings and
    image-generation servables are deployed that way.
    """
    base = Path(local_base)
    return (base / "graph.pbtxt").is_file() or (base / "1" / "graph.pbtxt").is_file()


def read_ovms_config(path: str | os.PathLike[str], path_map: Mapping[str, str] | None = None) -> OvmsConfig:
    """Read OVMS's ``config.json`` strictly and split it into models to warm and entries not managed.

    Stricter than OVMS on purpose: OVMS logs a warning and carries on for a batch size it
    cannot parse or a bad version number, and then compiles something else than the team
    meant; a warm-up must not guess. Wrong JSON types are refused, never coerced.

    :param path: the config file as the agent sees it.
    :param path_map: server path prefix -> agent path prefix (``{"/models": "/srv/models"}``).
    """
    cfg = str(path)
    try:
        text = Path(cfg).read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(cfg, None, f"cannot be read ({exc.strerror or exc})", "check the path given to --ovms-config") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(cfg, None, f"is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", "fix the JSON syntax") from exc
    if not isinstance(doc, dict):
        raise _fail(cfg, None, "is not a JSON object", 'OVMS expects {"model_config_list": [...]}')
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise _fail(cfg, None, f"has unknown top-level keys {unknown}", f"OVMS accepts only {sorted(_TOP_KEYS)}")
    if "model_config_list" not in doc:
        raise _fail(cfg, None, "has no model_config_list", 'add "model_config_list": [{"config": {...}}]')
    entries = doc["model_config_list"]
    if not isinstance(entries, list):
        raise _fail(cfg, None, "model_config_list is not a list", 'write "model_config_list": [{"config": {...}}]')

    not_managed: list[NotManaged] = []
    for graph in doc.get("mediapipe_config_list") or []:
        name = graph.get("name", "?") if isinstance(graph, dict) else "?"
        not_managed.append(NotManaged(str(name), "MediaPipe graph (mediapipe_config_list): not managed"))
    # custom_loader_config_list only declares loaders; the models that use one (custom_loader_options) are reported below.

    agent_dir = os.path.dirname(os.path.abspath(cfg))  # not resolved: the path map names mount points, maybe symlinks
    server_dir = _unmap_path(agent_dir, path_map)
    models: list[OvmsModel] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        label = f"#{index}"
        if not isinstance(entry, dict) or set(entry) != {"config"} or not isinstance(entry["config"], dict):
            raise _fail(
                cfg,
                label,
                'entry is not {"config": {...}}',
                'each model_config_list item is {"config": {"name": ..., "base_path": ...}}',
            )
        c = entry["config"]
        name = c.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(cfg, label, "config has no name", 'add "name": "<model name>"')
        unknown = sorted(set(c) - _MODEL_KEYS)
        if unknown:
            raise _fail(cfg, name, f"unknown keys {unknown}", f"OVMS accepts only {sorted(_MODEL_KEYS)}")
        if name in seen:
            raise _fail(cfg, name, "is defined twice", "OVMS loads only the first definition; remove the other")
        seen.add(name)
        for key in ("base_path", "target_device", "graph_path", "subconfig"):
            if key in c and not isinstance(c[key], str):
                raise _fail(cfg, name, f"{key} is {c[key]!r}, not a string", f'write "{key}": "..."')
        for key in ("allow_cache",):
            if key in c and not isinstance(c[key], bool):
                raise _fail(cfg, name, f"{key} is {c[key]!r}, not true/false", f'write "{key}": true')
        if "nireq" in c and (not _is_int(c["nireq"]) or c["nireq"] < 0):
            raise _fail(cfg, name, f"nireq is {c['nireq']!r}", "nireq is an integer, 0 for OVMS's default")

        if "custom_loader_options" in c:
            not_managed.append(NotManaged(name, "custom loader: OVMS does not cache this model"))
            continue
        if "graph_path" in c or "subconfig" in c:
            not_managed.append(NotManaged(name, "MediaPipe graph (graph_path/subconfig): not managed"))
            continue

        raw_base = c.get("base_path", "")
        if raw_base.startswith(_REMOTE_PREFIXES):
            not_managed.append(
                NotManaged(name, f"remote base_path {raw_base}: not managed (OVMS downloads it to a temporary folder)")
            )
            continue
        # src/filesystem/filesystem.hpp, FileSystem::isPathEscaped: OVMS refuses "..".
        if raw_base.startswith("../") or "/../" in raw_base or raw_base.endswith("/.."):
            raise _fail(cfg, name, f"base_path {raw_base} escapes with ..", "OVMS refuses such paths; write the path without ..")
        # FileSystem::setPath: empty means the config's folder; relative is relative to it.
        if not raw_base:
            server_base = server_dir
        elif raw_base.startswith("/"):
            server_base = raw_base
        else:
            server_base = str(PurePosixPath(server_dir) / raw_base)
        server_base = str(PurePosixPath(os.path.normpath(server_base)))
        local_base = _map_path(server_base, path_map)
        if local_base is None:
            raise _fail(
                cfg,
                name,
                f"base_path {server_base} is under none of the mapped prefixes {sorted(path_map or {})}",
                "add its mount point to the path map",
            )
        if _is_graph(local_base):
            not_managed.append(NotManaged(name, "MediaPipe/LLM graph (graph.pbtxt in base_path): not managed"))
            continue

        device = c.get("target_device")
        if device is not None and not device.strip():
            raise _fail(
                cfg, name, "target_device is empty", 'name a device ("CPU", "GPU.0", "AUTO:GPU,CPU") or leave the key out'
            )

        ignored: list[str] = []
        shape: str | dict[str, str | list[int]] | None = None
        if "shape" in c:
            s = c["shape"]
            if isinstance(s, str):
                shape = _parse_shape_string(s, cfg, name, "shape")
            elif isinstance(s, dict):
                shape = {}
                for inp, v in s.items():
                    if inp == ANONYMOUS_INPUT:
                        raise _fail(cfg, name, f"shape key {inp} is reserved by OVMS", "name a real input")
                    if isinstance(v, str):
                        shape[inp] = _parse_shape_string(v, cfg, name, f"shape.{inp}")
                    elif isinstance(v, list) and all(_is_int(d) and d >= 0 for d in v):
                        shape[inp] = list(v)
                    else:
                        raise _fail(cfg, name, f"shape.{inp} is {v!r}", 'write "(1,3,224,224)" or [1, 3, 224, 224]')
                shape = shape or None
            else:
                raise _fail(
                    cfg,
                    name,
                    f"shape is {s!r}, neither a string nor an object",
                    'write "(1,3,224,224)" or {"input": "(1,3,224,224)"}',
                )

        batch: int | str | None = None
        if "batch_size" in c:
            b = c["batch_size"]
            if _is_int(b):
                if b < 1:
                    raise _fail(cfg, name, f"batch_size is {b}", "batch_size must be 1 or more")
                batch = b
            elif isinstance(b, str):
                bs = re.sub(r"\s+", "", b)
                if bs == "auto":
                    batch = "auto"
                elif bs == "":
                    batch = None  # OVMS: an empty string means "not configured"
                elif bs == "0" or not _dimension_ok(bs):
                    # OVMS only warns here and serves the model's own batch: refuse instead.
                    raise _fail(
                        cfg, name, f"batch_size {b!r} is not a batch size", 'write a positive integer, "1:8", "-1" or "auto"'
                    )
                else:
                    batch = int(bs) if re.fullmatch(r"[1-9][0-9]*", bs) else bs
            else:
                raise _fail(cfg, name, f"batch_size is {b!r}, neither an integer nor a string", 'write 4 or "4"')
        if batch is not None and shape is not None:
            # src/modelconfig.cpp, ModelConfig::parseNode: shape wins, batch_size is dropped.
            ignored.append("batch_size (shape is set)")
            batch = None

        layout: str | dict[str, str] | None = None
        if "layout" in c:
            lv = c["layout"]
            if isinstance(lv, str):
                layout = _parse_layout(lv, cfg, name, "layout") if lv else None
            elif isinstance(lv, dict):
                for k, v in lv.items():
                    if not isinstance(v, str):
                        raise _fail(cfg, name, f"layout.{k} is {v!r}, not a string", 'write {"input": "NHWC:NCHW"}')
                layout = {k: _parse_layout(v, cfg, name, f"layout.{k}") for k, v in lv.items()} or None
            else:
                raise _fail(
                    cfg, name, f"layout is {lv!r}, neither a string nor an object", 'write "NCHW" or {"input": "NHWC:NCHW"}'
                )

        plugin = _parse_plugin_config(c["plugin_config"], cfg, name) if "plugin_config" in c else {}
        policy = (
            _parse_version_policy(c["model_version_policy"], cfg, name)
            if "model_version_policy" in c
            else {"latest": {"num_versions": 1}}
        )
        if "nireq" in c:
            ignored.append("nireq (infer request queue only)")
        models.append(
            OvmsModel(
                name=name,
                base_path=server_base,
                local_base_path=local_base,
                config_path=cfg,
                target_device=device,
                plugin_config=plugin,
                shape=shape,
                batch_size=batch,
                layout=layout,
                model_version_policy=policy,
                allow_cache=bool(c.get("allow_cache", False)),
                nireq=c.get("nireq"),
                ignored=tuple(ignored),
            )
        )
    return OvmsConfig(cfg, models, not_managed)


def load_ovms_config(
    path: str | os.PathLike[str], path_map: Mapping[str, str] | None = None, allow_not_managed: bool = False
) -> list[OvmsModel]:
    """The models of an OVMS ``config.json`` that a warm-up can replay.

    By default an entry this project cannot warm (MediaPipe and LLM graphs, custom
    loaders, remote repositories) is an error, so nobody believes a graph was warmed;
    ``allow_not_managed`` skips them instead (see :func:`read_ovms_config` for the list).

    :param path: the config file as the agent sees it.
    :param path_map: server path prefix -> agent path prefix, as for :func:`read_ovms_config`.
    :param allow_not_managed: skip the entries this project cannot warm instead of refusing the file.
    """
    found = read_ovms_config(path, path_map)
    if found.not_managed and not allow_not_managed:
        first = found.not_managed[0]
        more = f" (and {len(found.not_managed) - 1} more)" if len(found.not_managed) > 1 else ""
        raise _fail(
            found.path,
            first.name,
            f"{first.reason}{more}",
            "remove it from the config given to the agent, or allow entries that are not managed",
        )
    return found.models


# --------------------------------------------------------------------------- the compile


def caching_disabled_reason(model: OvmsModel) -> str | None:
    """Why OVMS would write no blob for this model, or ``None`` when it caches it.

    ``src/modelinstance.cpp``, ``ModelInstance::setCacheOptions``: with a cache directory
    configured, OVMS sets ``cache_dir`` to ``""`` on its Core for a model with a custom
    loader, any ``shape`` of ``auto``, or ``batch_size`` ``auto``, unless the model sets
    ``allow_cache: true``. (Custom-loader models never reach here: they are not managed.)

    :param model: the model's config entry.
    """
    if model.allow_cache:
        return None
    shapes = [model.shape] if isinstance(model.shape, str) else list((model.shape or {}).values())
    if any(s == "auto" for s in shapes):
        return "OVMS does not cache this model: shape is auto"
    if model.batch_size == "auto":
        return "OVMS does not cache this model: batch_size is auto"
    return None


def _stoi64(text: str) -> int | None:
    """``src/stringutils.cpp``, ``stoi64``: digits with an optional minus, no leading zero."""
    if not re.fullmatch(r"-?[0-9]+", text) or (len(text) > 1 and text[1 if text[0] == "-" else 0] == "0"):
        return None
    value = int(text)
    return value if -(2**63) <= value < 2**63 else None


def _normalise_typed(config: dict[str, Any]) -> dict[str, Any]:
    """``src/modelinstance.cpp``, ``normalizeTypedPluginConfigValues``: a few strings become typed."""
    out = dict(config)
    for key in _INT64_KEYS:
        v = out.get(key)
        if isinstance(v, str) and _stoi64(v) is not None:
            out[key] = _stoi64(v)
    for key in _BOOL_KEYS:
        v = out.get(key)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            out[key] = v.lower() == "true"
    props = out.get("DEVICE_PROPERTIES")
    if isinstance(props, dict):
        out["DEVICE_PROPERTIES"] = {d: _normalise_typed(p) if isinstance(p, dict) else p for d, p in props.items()}
    return out


def ovms_read_config(model: OvmsModel) -> dict[str, Any]:
    """The properties OVMS passes to ``read_model`` and (before the CPU defaults) to ``compile_model``.

    ``src/modelinstance.cpp``, ``ModelInstance::prepareDefaultPluginConfig``: the parsed
    plugin config, typed, plus ``PERFORMANCE_HINT=LATENCY`` unless ``NUM_STREAMS`` or
    ``PERFORMANCE_HINT`` is set.

    :param model: the model's config entry.
    """
    config = _normalise_typed(dict(model.plugin_config))
    if "NUM_STREAMS" not in config and "PERFORMANCE_HINT" not in config:
        config["PERFORMANCE_HINT"] = "LATENCY"
    return config


def ovms_plugin_config(model: OvmsModel, container: ContainerCpu | None = None, device: str | None = None) -> dict[str, Any]:
    """Exactly the properties OVMS passes to ``compile_model``.

    ``ModelInstance::loadOVCompiledModel``: :func:`ovms_read_config`, then, for target
    device ``CPU`` only and only when OVMS runs in a container, ``applyDefaultCpuProperties``
    (``src/ov_utils.cpp``): ``ENABLE_CPU_PINNING`` = no CPU quota; with a ``THROUGHPUT``
    hint and no ``NUM_STREAMS``, ``NUM_STREAMS`` = min(cores, physical cores x sockets);
    ``INFERENCE_NUM_THREADS`` = cores when cores <= physical cores x sockets. On CPU none
    of these is a caching property (the CPU plugin lists only ``FULL_DEVICE_NAME``), so
    they do not change the blob name there.

    :param model: the model's config entry.
    :param container: what OVMS measures in its container; ``None`` when it runs on the host.
    :param device: the resolved device when the model names none.
    """
    config = ovms_read_config(model)
    target = model.target_device or device
    if target == "CPU" and container is not None:
        if "ENABLE_CPU_PINNING" not in config:
            config["ENABLE_CPU_PINNING"] = container.cpu_quota <= 0
        if config.get("PERFORMANCE_HINT") == "THROUGHPUT" and "NUM_STREAMS" not in config:
            config["NUM_STREAMS"] = min(container.cores, container.physical_cores_per_socket * container.sockets)
        if "INFERENCE_NUM_THREADS" not in config and container.cores <= container.physical_cores_per_socket * container.sockets:
            config["INFERENCE_NUM_THREADS"] = container.cores
    return config


def resolve_target_device(model: OvmsModel, core: Any) -> str:
    """The device OVMS compiles for: the configured one, else the one it recommends.

    ``src/ov_utils.cpp``, ``recommendTargetDevice`` (OVMS 2026.3 and later): a discrete
    GPU (the one with most free memory when several), else the first integrated GPU,
    else CPU. Free memory is measured at server start; with several discrete GPUs name
    the device in the config instead of relying on this.

    :param model: the model's config entry.
    :param core: the ``openvino.Core`` whose devices are asked.
    """
    if model.target_device:
        return model.target_device
    discrete: list[tuple[int, str]] = []
    integrated: list[str] = []
    for dev in core.available_devices:
        if not str(dev).startswith("GPU"):
            continue
        try:
            is_discrete = str(core.get_property(dev, "DEVICE_TYPE")).upper().endswith("DISCRETE")
        except Exception:  # noqa: BLE001 - OVMS treats an unanswered query as an integrated GPU
            is_discrete = False
        if is_discrete:
            try:
                total = int(core.get_property(dev, "GPU_DEVICE_TOTAL_MEM_SIZE"))
            except Exception:  # noqa: BLE001 - OVMS counts it as no free memory
                total = 0
            discrete.append((total, str(dev)))
        else:
            integrated.append(str(dev))
    if discrete:
        return max(discrete)[1]
    return integrated[0] if integrated else "CPU"


def check_device(core: Any, model: OvmsModel, device: str) -> None:
    """Refuse a plain device name this host does not have (``GPU`` matches ``GPU.0``).

    Composite names (``AUTO``, ``MULTI``, ``HETERO:...``, ``BATCH:...``) are left to OpenVINO,
    which resolves them against what is present.

    :param core: the ``openvino.Core`` whose devices are listed.
    :param model: the model's config entry, named in the error.
    :param device: the resolved target device.
    """
    if ":" in device or device in ("AUTO", "MULTI", "HETERO", "BATCH"):
        return
    present = [str(d) for d in core.available_devices]
    if not any(d == device or d.startswith(device + ".") for d in present):
        raise UsageError(
            f"OVMS config {model.config_path}, model {model.name}: target_device {device} is not present on this host (found {present})",
            hint="warm this model on hosts that have the device, or change target_device",
            where=Location(model=model.name, device=device),
        )


def check_plugin_config(core: Any, model: OvmsModel, device: str) -> None:
    """Refuse a plugin config OVMS would refuse, before compiling anything.

    ``src/ov_utils.cpp``, ``validatePluginConfiguration``: every key must be among the
    device's ``SUPPORTED_PROPERTIES`` (for ``HETERO:A,B``-style names, those of the
    plugin and of each listed device), ``ENABLE_MMAP`` always passes. OVMS rejects the
    whole config file otherwise. (On CPU, ``CACHE_DIR`` is not listed, so it cannot be
    set in a CPU model's plugin_config.)

    :param core: the ``openvino.Core`` asked for each device's supported properties.
    :param model: the model's config entry, whose ``plugin_config`` keys are checked.
    :param device: the resolved target device.
    """
    names = [device]
    if ":" in device:
        plugin, rest = device.split(":", 1)
        names = [plugin] + [d.split("(", 1)[0] for d in rest.split(",")]
    supported = {"ENABLE_MMAP"}
    for n in names:
        try:
            supported.update(str(p) for p in core.get_property(n, "SUPPORTED_PROPERTIES"))
        except Exception:  # noqa: BLE001 - OVMS logs and carries on with what it has
            continue
    bad = sorted(set(model.plugin_config) - supported)
    if bad:
        raise UsageError(
            f"OVMS config {model.config_path}, model {model.name}: plugin_config keys {bad} are not supported by {device}",
            hint="OVMS refuses the whole config for this; remove them or change target_device",
            where=Location(model=model.name, device=device),
        )


def _read_mapping(version_dir: Path, model: OvmsModel) -> tuple[dict[str, str], dict[str, str]]:
    """``ModelConfig::parseModelMapping``: ``mapping_config.json`` in the version folder (real -> mapped names)."""
    path = version_dir / "mapping_config.json"
    if not path.is_file():
        return {}, {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"{path}: mapping config of model {model.name} is not valid JSON ({exc})",
            hint="fix or remove it; OVMS refuses it too",
        ) from exc
    ok = isinstance(doc, dict) and set(doc) <= {"inputs", "outputs"}
    ok = ok and all(
        isinstance(doc.get(k, {}), dict) and all(isinstance(v, str) for v in doc.get(k, {}).values())
        for k in ("inputs", "outputs")
    )
    if not ok:
        raise UsageError(
            f"{path}: mapping config of model {model.name} is not {{inputs: {{}}, outputs: {{}}}}", hint="fix or remove it"
        )
    return dict(doc.get("inputs", {})), dict(doc.get("outputs", {}))


def _partial_shape(ov: Any, spec: str | list[int]) -> Any:
    """An OVMS shape (``(1,-1,1:8)`` or a list) as an ``openvino.PartialShape``."""
    dims: list[Any] = []
    tokens = [str(d) for d in spec] if isinstance(spec, list) else spec.strip("()").split(",")
    for tok in tokens:
        if tok == "-1":
            dims.append(ov.Dimension())
        elif ":" in tok:
            lo, hi = tok.split(":")
            dims.append(ov.Dimension(int(lo), int(hi)))
        else:
            dims.append(ov.Dimension(int(tok)))
    return ov.PartialShape(dims)


def _rt_layout(ov: Any, port: Any) -> Any | None:
    """``src/ov_utils.cpp``, ``getLayoutFromRTMap``: the layout a port carries in its rt_info, if any."""
    keys = list(port.get_rt_info().keys())
    if not any(k == "layout" or k.startswith("layout_") for k in keys):
        return None
    return ov.layout_helpers.get_layout(port)


def _rank(port: Any) -> int:
    ps = port.get_partial_shape()
    return 0 if ps.rank.is_dynamic else len(ps)


def _split_layout(text: str) -> tuple[str, str]:
    """``LayoutConfiguration``: ``"A:B"`` is tensor A over model B; one layout is both."""
    if ":" in text:
        tensor, model_layout = text.split(":", 1)
        return tensor, model_layout
    return text, text


def prepare_model(core: Any, model_file: str, model: OvmsModel) -> Any:
    """Build the ``openvino.Model`` OVMS compiles for one version of ``model``.

    The steps of ``ModelInstance::loadModelImpl`` (``src/modelinstance.cpp``), in order:

    1. ``loadOVModelPtr``: ``read_model(file, "", config)`` with :func:`ovms_read_config`.
    2. ``validateConfigurationAgainstNetwork``: a single-string shape or layout needs a
       model with one input; named shapes and layouts must name inputs (outputs) of the
       model, by real name or by the name ``mapping_config.json`` gives them.
    3. ``adjustForEmptyOutputNames``: an output without a tensor name gets ``out_<index>``.
    4. ``applyPreprocessing`` / ``applyLayoutConfiguration``: one ``PrePostProcessor``
       over the model. For every input: the single configured layout (tensor and model
       layout, through ``input()``), else the layout configured for its (mapped) name,
       else ``model().set_layout`` of the rt_info layout, else ``N...`` (``...`` for a
       scalar). For every output: the layout configured for its name, else rt_info, else
       ``N...``. Then ``build()``. (Mean, scale, colour format and precision come only
       from the single-model command line, not from config.json: not reproduced.)
    5. ``loadInputTensorsImpl`` / ``gatherReshapeInfo``: without ``batch_size``, each
       input's configured shape (by mapped name, else the single-string shape) replaces
       its shape; ``model.reshape`` of all inputs when any differs.
    6. ``configureBatchSize``: ``openvino.set_batch(model, batch_size)`` (needs an ``N``
       in the layouts step 4 set).

    ``auto`` shapes and batch sizes leave the model as it is, as OVMS's first load does.

    :param core: the ``openvino.Core`` that reads the model.
    :param model_file: the version's model file (:func:`ovms_model_file`), as the agent sees it.
    :param model: the model's config entry: shape, layout, batch size and plugin config.
    """
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    where = Location(model=model.name, device=model.target_device)
    ov_model = core.read_model(model_file, "", ovms_read_config(model))
    in_map, out_map = _read_mapping(Path(model_file).parent, model)
    in_rev = {v: k for k, v in in_map.items()}
    out_rev = {v: k for k, v in out_map.items()}

    def fail(message: str, hint: str) -> UsageError:
        return UsageError(
            f"OVMS config {model.config_path}, model {model.name}, file {model_file}: {message}", hint=hint, where=where
        )

    inputs = list(ov_model.inputs)
    input_names = {n for p in inputs for n in p.get_names()}
    output_names = {n for p in ov_model.outputs for n in p.get_names()}
    if isinstance(model.shape, str) and model.shape != "auto" and len(inputs) > 1:
        raise fail("a single shape string needs a model with one input", "give the shape per input name")
    if isinstance(model.layout, str) and len(inputs) > 1:
        raise fail("a single layout string needs a model with one input", "give the layout per input name")
    for name in model.shape if isinstance(model.shape, dict) else {}:
        if name in input_names and name in in_map:
            raise fail(f"shape names input {name}, which mapping_config.json renames to {in_map[name]}", "use the mapped name")
        if name not in input_names and in_rev.get(name) not in input_names:
            raise fail(f"shape names {name}, which is not an input of the model", f"inputs are {sorted(input_names)}")
    for name in model.layout if isinstance(model.layout, dict) else {}:
        if (name in input_names and name in in_map) or (name in output_names and name in out_map):
            raise fail(f"layout names {name}, which mapping_config.json renames", "use the mapped name")
        if not ({name, in_rev.get(name), out_rev.get(name)} & (input_names | output_names)):
            raise fail(
                f"layout names {name}, which is neither an input nor an output",
                f"inputs {sorted(input_names)}, outputs {sorted(output_names)}",
            )

    for index, out in enumerate(ov_model.outputs):
        if not out.get_names():
            out.get_tensor().add_names({f"out_{index}"})

    named = model.layout if isinstance(model.layout, dict) else {}
    ppp = PrePostProcessor(ov_model)
    for port in ov_model.inputs:
        name = port.get_any_name()
        mapped = in_map.get(name, name)
        if isinstance(model.layout, str):
            tensor, model_layout = _split_layout(model.layout)
            ppp.input().tensor().set_layout(ov.Layout(tensor))
            ppp.input().model().set_layout(ov.Layout(model_layout))
        elif mapped in named:
            tensor, model_layout = _split_layout(named[mapped])
            ppp.input(name).tensor().set_layout(ov.Layout(tensor))
            ppp.input(name).model().set_layout(ov.Layout(model_layout))
        else:
            inherited = _rt_layout(ov, port)
            ppp.input(name).model().set_layout(
                inherited if inherited is not None else ov.Layout("N..." if _rank(port) else "...")
            )
    for port in ov_model.outputs:
        name = port.get_any_name()
        mapped = out_map.get(name, name)
        if mapped in named:
            tensor, model_layout = _split_layout(named[mapped])
            ppp.output(name).tensor().set_layout(ov.Layout(tensor))
            ppp.output(name).model().set_layout(ov.Layout(model_layout))
        else:
            inherited = _rt_layout(ov, port)
            ppp.output(name).model().set_layout(
                inherited if inherited is not None else ov.Layout("N..." if _rank(port) else "...")
            )
    try:
        ov_model = ppp.build()
    except Exception as exc:
        raise fail(f"OpenVINO refused the layouts ({_first_line(exc)})", "check layout against the model's ranks") from exc

    shapes = model.shape if isinstance(model.shape, dict) else {}
    if model.batch_size is None:
        new_shapes: dict[str, Any] = {}
        changed = False
        for port in ov_model.inputs:
            name = port.get_any_name()
            key = in_map.get(name, name)
            spec: str | list[int] | None = None
            if key in shapes and shapes[key] != "auto":
                spec = shapes[key]
            elif isinstance(model.shape, str) and model.shape != "auto":
                spec = model.shape
            current = port.get_partial_shape()
            target = _partial_shape(ov, spec) if spec is not None and spec != [] else current
            new_shapes[name] = target
            changed = changed or target != current
        if changed:
            try:
                ov_model.reshape(new_shapes)
            except Exception as exc:
                raise fail(
                    f"OpenVINO cannot reshape the model to {model.shape} ({_first_line(exc)})", "fix shape in the config"
                ) from exc
    elif model.batch_size != "auto":
        dim = (
            ov.Dimension(model.batch_size)
            if isinstance(model.batch_size, int)
            else _partial_shape(ov, f"({model.batch_size})")[0]
        )
        try:
            ov.set_batch(ov_model, dim)
        except Exception as exc:
            raise fail(
                f"OpenVINO cannot set batch size {model.batch_size} ({_first_line(exc)})",
                "give the inputs a layout with N, or drop batch_size",
            ) from exc
    return ov_model


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def compile_ovms(
    core: Any, model_file: str, model: OvmsModel, cache_dir: str, container: ContainerCpu | None = None
) -> tuple[Any, float]:
    """Compile one version as OVMS does, writing its blob into ``cache_dir``; returns (compiled, seconds).

    ``ModelInstance::setCacheOptions`` sets the cache directory on OVMS's one shared Core
    (``core.set_property({"CACHE_DIR": ...})``), not in the compile properties, before the
    model is read; then :func:`prepare_model`; then ``loadCompiledModelPtr``:
    ``compile_model(model, device, ovms_plugin_config(...))``. The seconds cover the
    compile only. ``CACHE_DIR`` on the Core and in the properties give the same blob name
    (checked by ``tests/core/test_ovms.py``).

    Raises :class:`UsageError` for a model OVMS would not cache
    (:func:`caching_disabled_reason`) rather than compile something no blob comes of.

    :param core: a Core of the caller's own: ``CACHE_DIR`` is set on it, as OVMS does on its shared one.
    :param model_file: the version's model file.
    :param model: the model's config entry.
    :param cache_dir: the directory the blob is written into (a staging folder when warming).
    :param container: what OVMS measures in its container, for a CPU compile; ``None`` on the host.
    """
    device = resolve_target_device(model, core)
    reason = caching_disabled_reason(model)
    if reason:
        raise UsageError(
            f"OVMS config {model.config_path}, model {model.name}: {reason}",
            hint="nothing to warm; set a fixed shape/batch_size, or allow_cache: true",
            where=Location(model=model.name, device=device),
        )
    check_device(core, model, device)
    check_plugin_config(core, model, device)
    core.set_property({"CACHE_DIR": str(cache_dir)})
    prepared = prepare_model(core, model_file, model)
    config = ovms_plugin_config(model, container=container, device=device)
    start = time.perf_counter()
    compiled = core.compile_model(prepared, device, config)
    return compiled, time.perf_counter() - start


# --------------------------------------------------------------------------- the repository


def ovms_versions(base_path: str | os.PathLike[str]) -> list[int]:
    """The versions OVMS sees under a model's folder, before its policy.

    ``src/modelmanager.cpp``, ``ModelManager::readAvailableVersions``: every
    sub-directory (symlinks followed) whose name ``std::stoll`` reads as a positive
    number. ``stoll`` reads a leading number and ignores the rest, so ``"02"``,
    ``"2_old"`` and ``"2.bak"`` all count as version 2. OVMS then reads the files of
    ``<base>/<number>`` (``ModelConfig::getPath``), not of the folder it found, so such a
    folder only adds a version number: if ``<base>/2`` is missing, loading version 2
    fails and OVMS applies the policy again to the versions left
    (``reloadModelWithVersions``), i.e. ``latest`` falls back to the next older one. A
    ``base_path`` that is itself a model file is served as version 1.

    :param base_path: the model's ``base_path``, as the agent sees it.
    """
    base = Path(base_path)
    if base.is_file():
        return [1]
    found: list[int] = []
    for entry in base.iterdir():
        if not entry.is_dir():
            continue
        m = re.match(r"\s*([+-]?[0-9]+)", entry.name)
        if m and int(m.group(1)) > 0:
            found.append(int(m.group(1)))
    return sorted(found)


def ovms_served_versions(model: OvmsModel, available: list[int]) -> list[int]:
    """``src/model_version_policy.cpp``: latest N (highest first), the specific ones present, or all.

    :param model: the model's config entry, whose ``model_version_policy`` decides.
    :param available: the versions present (:func:`ovms_versions`).
    """
    policy = model.model_version_policy
    if "all" in policy:
        return sorted(set(available), reverse=True)
    if "specific" in policy:
        return sorted(set(available) & set(policy["specific"]["versions"]), reverse=True)
    n = int(policy.get("latest", {}).get("num_versions", 1))
    return sorted(set(available), reverse=True)[:n]


def ovms_model_file(version_dir: str | os.PathLike[str]) -> str:
    """The file OVMS reads in a version folder.

    ``ModelInstance::fetchModelFilepaths`` / ``fetchModelFiles`` and
    ``FileSystem::findFilePathWithExtension``: IR first (some ``*.xml`` and some
    ``*.bin``), then ONNX, PaddlePaddle, TensorFlow (``.pb``; ``saved_model.pb`` means
    its folder), TFLite; within a kind, the first matching file in *directory order*
    (``readdir``, not sorted), matched case-insensitively. With two ``.xml`` files in one
    folder OVMS's pick depends on the filesystem, so this refuses the folder instead.

    :param version_dir: the version folder (or a model file served as version 1).
    """
    folder = Path(version_dir)
    if folder.is_file():
        return str(folder)
    files = [e for e in os.scandir(folder) if not e.is_dir()]
    for kind in _MODEL_FILE_KINDS:
        picks = [[e.path for e in files if e.name.lower().endswith(ext)] for ext in kind]
        if all(picks):
            first = picks[0]
            if len(first) > 1:
                raise UsageError(
                    f"{folder}: {len(first)} {kind[0]} files; OVMS picks one in directory order, which differs between hosts",
                    hint="keep one model per version folder",
                )
            path = first[0]
            if path.lower().endswith("saved_model.pb"):
                return str(Path(path).parent) + os.sep
            return path
    raise UsageError(
        f"{folder}: no model file OVMS can read (.xml+.bin, .onnx, .pdmodel+.pdiparams, .pb, .tflite)",
        hint="deploy the model files into the version folder",
    )
