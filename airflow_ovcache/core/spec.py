"""The cache spec: the exact compile call a serving application makes.

A warm-up only helps if it replays that call: the same model path, device,
properties, by-path or by-model compile, cache mode and encryption. Otherwise it
writes a blob under a name the server never looks up (on GPU the hints change
the name; by-model and by-path hash different things). The spec is therefore
recorded with every blob and is the unit the manifest keys entries by.

Specs come from command-line flags or from a serving config file (TOML or JSON)::

    [defaults]
    devices = ["CPU"]
    compile_mode = "path"          # or "model": core.read_model() then compile_model(model)
    cache_mode = "OPTIMIZE_SPEED"  # or "OPTIMIZE_SIZE" (weightless, IR only)
    properties = { PERFORMANCE_HINT = "LATENCY" }

    [models.resnet50]
    devices = ["CPU", "GPU"]
    model_file = "resnet50.xml"
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..protocol.location import Location
from .errors import UsageError

CompileMode = Literal["path", "model"]
CacheMode = Literal["OPTIMIZE_SPEED", "OPTIMIZE_SIZE"]
COMPILE_MODES: tuple[str, ...] = ("path", "model")
CACHE_MODES: tuple[str, ...] = ("OPTIMIZE_SPEED", "OPTIMIZE_SIZE")
# How a kind of server turns a version folder into compile calls (see docs/serving-profiles.md):
# openvino: compile_model by path or by model object; ovms: OpenVINO Model Server's preparation;
# python: an in-house server's own loader function, called in a fresh process;
# optimum: optimum-intel's OVModelForXxx.from_pretrained, called the same way;
# genai: OpenVINO GenAI's pipeline constructor (LLMPipeline), called the same way.
PROFILES: tuple[str, ...] = ("openvino", "ovms", "python", "optimum", "genai")
DEFAULT_PROFILE = "openvino"
# Set by the agent itself from the spec; a user-supplied value would silently disagree with it.
RESERVED_PROPERTIES = {"CACHE_DIR", "CACHE_MODE", "CACHE_ENCRYPTION_CALLBACKS"}


@dataclass(frozen=True)
class CacheSpec:
    """One compile call as the server makes it; blobs, manifest entries and warm items are keyed by it.

    Build one with :meth:`make` (from flags or a config) or :meth:`from_json` (from a
    manifest entry); the constructor only checks combinations that cannot work, such
    as encryption with a non-``openvino`` profile or a property the agent sets itself.
    """

    device: str = "CPU"
    properties: tuple[tuple[str, str], ...] = ()
    compile_mode: str = "path"
    cache_mode: str = "OPTIMIZE_SPEED"
    model_file: str | None = None
    # Path of a host-local key file; the key itself is never stored, only its id (see encryption.py).
    encryption_key_file: str | None = None
    # The serving profile and what it needs besides (the OVMS model config, the loader),
    # as canonical JSON so the spec stays hashable and compares by value.
    profile: str = DEFAULT_PROFILE
    profile_json: str = ""

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise UsageError(f"serving profile {self.profile!r} is not one of {', '.join(PROFILES)}")
        if self.profile != DEFAULT_PROFILE:
            if self.encryption_key_file:
                raise UsageError(
                    f"the {self.profile} profile cannot encrypt the cache: the server does not set CACHE_ENCRYPTION_CALLBACKS",
                    hint="drop the encryption key for this model, or serve it with the openvino profile",
                )
            if self.cache_mode != "OPTIMIZE_SPEED":
                raise UsageError(f"the {self.profile} profile compiles with the server's own CACHE_MODE; drop --cache-mode")
        if not self.device or any(c.isspace() for c in self.device):
            raise UsageError(f"device {self.device!r} is not a device name")
        if self.compile_mode not in COMPILE_MODES:
            raise UsageError(f"compile mode {self.compile_mode!r} is not one of {', '.join(COMPILE_MODES)}")
        if self.cache_mode not in CACHE_MODES:
            raise UsageError(f"cache mode {self.cache_mode!r} is not one of {', '.join(CACHE_MODES)}")
        for key, _ in self.properties:
            if key.upper() in RESERVED_PROPERTIES:
                raise UsageError(
                    f"property {key} is set by ovcache itself",
                    hint="use --cache-dir, --cache-mode and --encryption-key-file instead",
                )

    @classmethod
    def make(
        cls,
        device: str = "CPU",
        properties: dict[str, Any] | None = None,
        compile_mode: str = "path",
        cache_mode: str = "OPTIMIZE_SPEED",
        model_file: str | None = None,
        encryption_key_file: str | None = None,
        profile: str = DEFAULT_PROFILE,
        profile_options: dict[str, Any] | None = None,
    ) -> CacheSpec:
        """A spec from loose values, normalised so equal calls give equal (and equally hashed) specs.

        Properties are sorted and their values turned into OpenVINO's strings; the
        profile options are stored as canonical JSON.

        :param device: the device the server compiles for (``CPU``, ``GPU.1``, ``AUTO``...).
        :param properties: compile properties (``PERFORMANCE_HINT`` ...); values are strings, numbers or bools.
        :param compile_mode: ``path`` (``compile_model(path)``) or ``model`` (``read_model`` first).
        :param cache_mode: ``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE`` (any case).
        :param model_file: the model file's name in the version folder, when it holds several.
        :param encryption_key_file: the key file (or ``-`` for standard input) that encrypts the blob.
        :param profile: the serving profile (``openvino``, ``ovms``, ``python``, ``optimum``, ``genai``).
        :param profile_options: what the profile needs besides: the OVMS model config, the python loader,
            optimum's ``model_class`` or GenAI's ``pipeline``.
        """
        if properties is not None and not isinstance(properties, dict):
            raise UsageError(f"properties {properties!r} is not a table of KEY = VALUE")
        props = tuple(sorted((_prop_key(k), _prop_value(v, str(k))) for k, v in (properties or {}).items()))
        options = json.dumps(profile_options, sort_keys=True, separators=(",", ":")) if profile_options else ""
        return cls(
            device, props, compile_mode, cache_mode.upper(), model_file, encryption_key_file, profile or DEFAULT_PROFILE, options
        )

    @property
    def profile_options(self) -> dict[str, Any]:
        """What the profile needs besides the spec: the OVMS model config, the loader to call."""
        return json.loads(self.profile_json) if self.profile_json else {}

    @property
    def property_dict(self) -> dict[str, str]:
        """The compile properties as the table ``compile_model`` takes."""
        return dict(self.properties)

    @property
    def encrypted(self) -> bool:
        """Whether the server seals its blobs with ``CACHE_ENCRYPTION_CALLBACKS``."""
        return self.encryption_key_file is not None

    def identity(self, key_id: str | None) -> dict[str, Any]:
        """What makes two compile calls the same; the key file path is not part of it, the key id is.

        The default profile adds nothing, so entries warmed before profiles existed keep their ids.

        :param key_id: the encryption key's id (:func:`.encryption.key_id`), or ``None`` when not encrypted.
        """
        identity: dict[str, Any] = {
            "device": self.device,
            "properties": self.property_dict,
            "compile_mode": self.compile_mode,
            "cache_mode": self.cache_mode,
            "model_file": self.model_file,
            "key_id": key_id,
        }
        if self.profile != DEFAULT_PROFILE:
            identity["profile"] = self.profile
            identity["profile_options"] = self.profile_options
        return identity

    def spec_id(self, key_id: str | None) -> str:
        """A short hash of :meth:`identity`: the spec's part of a manifest entry's key.

        :param key_id: the encryption key's id, or ``None`` when not encrypted; a rotated key gives a new id.
        """
        import blake3

        canon = json.dumps(self.identity(key_id), sort_keys=True, separators=(",", ":"))
        return blake3.blake3(canon.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        """The spec as the manifest records it and the agent reports it; :meth:`from_json` reads it back."""
        data: dict[str, Any] = {
            "device": self.device,
            "properties": self.property_dict,
            "compile_mode": self.compile_mode,
            "cache_mode": self.cache_mode,
            "model_file": self.model_file,
            "encryption_key_file": self.encryption_key_file,
        }
        if self.profile != DEFAULT_PROFILE:
            data["profile"] = self.profile
            data["profile_options"] = self.profile_options
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheSpec:
        """The spec :meth:`to_json` wrote (missing keys take their defaults, so older manifests still read).

        :param data: the JSON object.
        """
        return cls.make(
            device=data.get("device", "CPU"),
            properties=data.get("properties") or {},
            compile_mode=data.get("compile_mode", "path"),
            cache_mode=data.get("cache_mode", "OPTIMIZE_SPEED"),
            model_file=data.get("model_file"),
            encryption_key_file=data.get("encryption_key_file"),
            profile=data.get("profile") or DEFAULT_PROFILE,
            profile_options=data.get("profile_options") or None,
        )

    def label(self) -> str:
        """A short human description for logs and tables: ``CPU (path, PERFORMANCE_HINT=LATENCY, encrypted)``."""
        if self.profile == "ovms":
            return f"{self.device} (ovms)"
        if self.profile == "python":
            return f"{self.device} (python loader {self.profile_options.get('loader', '?')})"
        if self.profile == "optimum":
            return f"{self.device} (optimum {self.profile_options.get('model_class', '?')})"
        if self.profile == "genai":
            return f"{self.device} (genai {self.profile_options.get('pipeline', '?')})"
        extra = [self.compile_mode]
        if self.cache_mode != "OPTIMIZE_SPEED":
            extra.append(self.cache_mode)
        extra += [f"{k}={v}" for k, v in self.properties]
        if self.encrypted:
            extra.append("encrypted")
        return f"{self.device} ({', '.join(extra)})"


def _prop_value(value: Any, key: str = "") -> str:
    from .values import property_value

    try:
        return property_value(value)
    except ValueError as exc:
        raise UsageError(f"property {key}: {exc}", hint="compile properties are strings, numbers or true/false") from None


def _prop_key(key: Any) -> str:
    if not isinstance(key, str) or not key.strip() or any(c.isspace() or not c.isprintable() for c in key):
        raise UsageError(f"property name {key!r} is not a property name", hint="for example PERFORMANCE_HINT")
    return key


def parse_property(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` from the command line, both sides stripped; raises :class:`UsageError` without ``=`` or a key.

    :param text: one ``--property`` value.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"property {text!r} is not KEY=VALUE", hint="for example --property PERFORMANCE_HINT=LATENCY")
    return key.strip(), value.strip()


@dataclass
class ServingConfig:
    """Per-model specs as the serving application configures them, from a TOML or JSON file or flags."""

    defaults: dict[str, Any] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "flags"

    @classmethod
    def load(cls, path: str | Path) -> ServingConfig:
        """Read a serving config file; only its ``[defaults]`` and ``[models.NAME]`` tables are accepted.

        Settings inside the tables are checked later, by :meth:`specs_for`, where the model is known.

        :param path: the TOML (or ``.json``) file.
        """
        from .configfile import load_table

        data = load_table(path, "serving config")
        unknown = set(data) - {"defaults", "models"}
        if unknown:
            raise UsageError(f"serving config {path}: unknown section(s) {', '.join(sorted(unknown))}")
        defaults = data.get("defaults") or {}
        models = data.get("models") or {}
        if not isinstance(defaults, dict):
            raise UsageError(f"serving config {path}: [defaults] must be a table")
        if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
            raise UsageError(f"serving config {path}: [models] must hold one table per model ([models.NAME])")
        return cls(dict(defaults), dict(models), str(path))

    def specs_for(self, model: str, overrides: dict[str, Any] | None = None) -> list[CacheSpec]:
        """One spec per device for ``model``: defaults, then the model's section, then command-line overrides.

        :param model: the model name, which picks its ``[models.NAME]`` section (none is fine).
        :param overrides: settings from flags (``None`` values ignored); ``properties`` are merged key by key,
            ``profile_options`` replaces the python loader, optimum's model class or GenAI's pipeline.
        """
        merged: dict[str, Any] = {**self.defaults, **self.models.get(model, {})}
        for section in (self.defaults.get("properties"), self.models.get(model, {}).get("properties")):
            if section is not None and not isinstance(section, dict):
                raise UsageError(
                    f"serving config {self.source}: model {model}: properties must be a table of KEY = VALUE",
                    where=Location(model=model),
                )
        props = {**(self.defaults.get("properties") or {}), **(self.models.get(model, {}).get("properties") or {})}
        loader_override: dict[str, Any] | None = None
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key == "properties":
                props.update(value)
            elif key == "profile_options":
                loader_override = dict(value)  # --loader: the python profile's loader, checked already
            else:
                merged[key] = value
        allowed = {
            "devices",
            "device",
            "properties",
            "compile_mode",
            "cache_mode",
            "model_file",
            "encryption_key_file",
            "profile",
            "loader",
            "loader_path",
            "model_class",
            "pipeline",
        }
        unknown = set(merged) - allowed
        where = Location(model=model)
        if unknown:
            raise UsageError(
                f"serving config {self.source}: model {model}: unknown setting(s) {', '.join(sorted(unknown))}", where=where
            )
        from .values import string, string_list

        try:
            raw_devices = merged.get("devices") or ([merged["device"]] if merged.get("device") else ["CPU"])
            devices = string_list(raw_devices, split_commas=True)
            texts = {
                key: string(merged[key], "a string")
                for key in (
                    "compile_mode",
                    "cache_mode",
                    "model_file",
                    "encryption_key_file",
                    "profile",
                    "loader",
                    "loader_path",
                    "model_class",
                    "pipeline",
                )
                if merged.get(key) is not None
            }
        except ValueError as exc:
            raise UsageError(f"serving config {self.source}: model {model}: {exc}", where=where) from None
        profile = texts.get("profile", DEFAULT_PROFILE)
        options: dict[str, Any] | None = None
        if profile == "ovms":
            raise UsageError(
                f"serving config {self.source}: model {model}: the ovms profile takes its settings from OVMS's own config.json",
                hint="pass --ovms-config /path/to/config.json instead",
                where=where,
            )
        if profile == "python" and loader_override is not None:
            options = loader_override
        elif profile == "python":
            from .pyloader import check_loader

            if "loader" not in texts:
                raise UsageError(
                    f"serving config {self.source}: model {model}: the python profile needs a loader (package.module:function)",
                    hint="set loader, or pass --loader",
                    where=where,
                )
            options = {"loader": check_loader(texts["loader"])}
            if texts.get("loader_path"):
                options["python_path"] = texts["loader_path"]
        elif profile == "optimum":
            # The class is checked per item, when it is warmed, so a wrong one fails that model alone.
            options = loader_override or {"model_class": texts.get("model_class")}
            if not options.get("model_class"):
                raise UsageError(
                    f"serving config {self.source}: model {model}: the optimum profile needs a model_class (OVModelForXxx)",
                    hint="set model_class, or pass --model-class",
                    where=where,
                )
            from .optimum import MODEL_FILE

            # optimum-intel reads openvino_model.xml and compiles the model object: the blob name hashes the graph.
            if texts.get("model_file", MODEL_FILE) != MODEL_FILE or texts.get("compile_mode", "model") != "model":
                raise UsageError(
                    f"serving config {self.source}: model {model}: the optimum profile loads {MODEL_FILE} and compiles "
                    "the model object, as optimum-intel does",
                    hint="drop model_file and compile_mode (--model-file, --compile-mode) for this model",
                    where=where,
                )
            texts["model_file"], texts["compile_mode"] = MODEL_FILE, "model"
        elif profile == "genai":
            # LLMPipeline is what a GenAI server of this folder layout makes; the kind is checked per item, when it
            # is warmed, so an unknown one fails that model alone.
            options = loader_override or {"pipeline": texts.get("pipeline", "LLMPipeline")}
            from .genai import MODEL_FILE as GENAI_MODEL_FILE

            # GenAI reads openvino_model.xml (and the tokenizer IRs beside it) and compiles the model object.
            if texts.get("model_file", GENAI_MODEL_FILE) != GENAI_MODEL_FILE or texts.get("compile_mode", "model") != "model":
                raise UsageError(
                    f"serving config {self.source}: model {model}: the genai profile loads {GENAI_MODEL_FILE} and compiles "
                    "the model object, as OpenVINO GenAI does",
                    hint="drop model_file and compile_mode (--model-file, --compile-mode) for this model",
                    where=where,
                )
            texts["model_file"], texts["compile_mode"] = GENAI_MODEL_FILE, "model"
        if "loader" in texts and profile != "python":
            raise UsageError(f'serving config {self.source}: model {model}: a loader needs profile = "python"', where=where)
        if "model_class" in texts and profile != "optimum":
            raise UsageError(f'serving config {self.source}: model {model}: a model_class needs profile = "optimum"', where=where)
        if "pipeline" in texts and profile != "genai":
            raise UsageError(f'serving config {self.source}: model {model}: a pipeline needs profile = "genai"', where=where)
        return [
            CacheSpec.make(
                device=device,
                properties=props,
                compile_mode=texts.get("compile_mode", "path"),
                cache_mode=texts.get("cache_mode", "OPTIMIZE_SPEED"),
                model_file=texts.get("model_file"),
                encryption_key_file=texts.get("encryption_key_file"),
                profile=profile,
                profile_options=options,
            )
            for device in devices
        ]
