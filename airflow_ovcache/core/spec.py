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

from .errors import UsageError, Where

CompileMode = Literal["path", "model"]
CacheMode = Literal["OPTIMIZE_SPEED", "OPTIMIZE_SIZE"]
COMPILE_MODES: tuple[str, ...] = ("path", "model")
CACHE_MODES: tuple[str, ...] = ("OPTIMIZE_SPEED", "OPTIMIZE_SIZE")
# Set by the agent itself from the spec; a user-supplied value would silently disagree with it.
RESERVED_PROPERTIES = {"CACHE_DIR", "CACHE_MODE", "CACHE_ENCRYPTION_CALLBACKS"}


@dataclass(frozen=True)
class CacheSpec:
    device: str = "CPU"
    properties: tuple[tuple[str, str], ...] = ()
    compile_mode: str = "path"
    cache_mode: str = "OPTIMIZE_SPEED"
    model_file: str | None = None
    # Path of a host-local key file; the key itself is never stored, only its id (see encryption.py).
    encryption_key_file: str | None = None

    def __post_init__(self) -> None:
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
    ) -> CacheSpec:
        if properties is not None and not isinstance(properties, dict):
            raise UsageError(f"properties {properties!r} is not a table of KEY = VALUE")
        props = tuple(sorted((_prop_key(k), _prop_value(v, str(k))) for k, v in (properties or {}).items()))
        return cls(device, props, compile_mode, cache_mode.upper(), model_file, encryption_key_file)

    @property
    def property_dict(self) -> dict[str, str]:
        return dict(self.properties)

    @property
    def encrypted(self) -> bool:
        return self.encryption_key_file is not None

    def identity(self, key_id: str | None) -> dict[str, Any]:
        """What makes two compile calls the same; the key file path is not part of it, the key id is."""
        return {
            "device": self.device,
            "properties": self.property_dict,
            "compile_mode": self.compile_mode,
            "cache_mode": self.cache_mode,
            "model_file": self.model_file,
            "key_id": key_id,
        }

    def spec_id(self, key_id: str | None) -> str:
        import blake3

        canon = json.dumps(self.identity(key_id), sort_keys=True, separators=(",", ":"))
        return blake3.blake3(canon.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "properties": self.property_dict,
            "compile_mode": self.compile_mode,
            "cache_mode": self.cache_mode,
            "model_file": self.model_file,
            "encryption_key_file": self.encryption_key_file,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CacheSpec:
        return cls.make(
            device=data.get("device", "CPU"),
            properties=data.get("properties") or {},
            compile_mode=data.get("compile_mode", "path"),
            cache_mode=data.get("cache_mode", "OPTIMIZE_SPEED"),
            model_file=data.get("model_file"),
            encryption_key_file=data.get("encryption_key_file"),
        )

    def label(self) -> str:
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
    """``KEY=VALUE`` from the command line."""
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
        """One spec per device for ``model``: defaults, then the model's section, then command-line overrides."""
        merged: dict[str, Any] = {**self.defaults, **self.models.get(model, {})}
        for section in (self.defaults.get("properties"), self.models.get(model, {}).get("properties")):
            if section is not None and not isinstance(section, dict):
                raise UsageError(
                    f"serving config {self.source}: model {model}: properties must be a table of KEY = VALUE",
                    where=Where(model=model),
                )
        props = {**(self.defaults.get("properties") or {}), **(self.models.get(model, {}).get("properties") or {})}
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key == "properties":
                props.update(value)
            else:
                merged[key] = value
        allowed = {"devices", "device", "properties", "compile_mode", "cache_mode", "model_file", "encryption_key_file"}
        unknown = set(merged) - allowed
        where = Where(model=model)
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
                for key in ("compile_mode", "cache_mode", "model_file", "encryption_key_file")
                if merged.get(key) is not None
            }
        except ValueError as exc:
            raise UsageError(f"serving config {self.source}: model {model}: {exc}", where=where) from None
        return [
            CacheSpec.make(
                device=device,
                properties=props,
                compile_mode=texts.get("compile_mode", "path"),
                cache_mode=texts.get("cache_mode", "OPTIMIZE_SPEED"),
                model_file=texts.get("model_file"),
                encryption_key_file=texts.get("encryption_key_file"),
            )
            for device in devices
        ]
