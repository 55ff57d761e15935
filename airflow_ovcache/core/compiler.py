"""The serving-style compile: the one call both warm-up and serving make.

Keeping it in one function is what makes a warmed blob the blob the server
finds: same path string, same device, same properties, same by-path or
by-model call, same cache mode and encryption callbacks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol.location import Location
from . import trace
from .encryption import CacheCipher, load_key
from .spec import CacheSpec


def compile_config(
    spec: CacheSpec, cache_dir: Path | None, where: Location | None = None, cipher: CacheCipher | None = None
) -> dict[str, Any]:
    """The ``compile_model`` config for ``spec``; ``cipher`` overrides the key the spec names.

    :param spec: the cache spec whose properties, cache mode and key file make the config.
    :param cache_dir: where OpenVINO should cache; ``None`` gives a config without any caching.
    :param where: host/model/version/device for the error if the key file cannot be read.
    :param cipher: a cipher already made from the key, reused so its failure count covers this compile.
    """
    config: dict[str, Any] = dict(spec.property_dict)
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
        if spec.cache_mode != "OPTIMIZE_SPEED":
            config["CACHE_MODE"] = spec.cache_mode
        if cipher is None and spec.encryption_key_file:
            cipher = CacheCipher(load_key(spec.encryption_key_file, where))
        if cipher is not None:
            config["CACHE_ENCRYPTION_CALLBACKS"] = cipher.callbacks()
    return config


@dataclass
class Compiled:
    """One serving-style compile's outcome: the compiled model, its time and whether the cache served it.

    ``compiled`` is OpenVINO's compiled model, or ``None`` when the load ran in another
    process (the ``python`` and ``optimum`` profiles); ``loaded_from_cache`` is ``None`` when the device
    does not report it.
    """

    compiled: Any
    seconds: float
    loaded_from_cache: bool | None
    # True when OpenVINO found a blob but the key could not decrypt it (it then
    # recompiled silently); None when the spec is not encrypted.
    key_rejected: bool | None = None


@trace.traced("compile")
def serving_compile(
    core: Any,
    model_path: Path,
    spec: CacheSpec,
    cache_dir: Path | None,
    where: Location | None = None,
    cipher: CacheCipher | None = None,
) -> Compiled:
    """Compile ``model_path`` exactly as a server configured with ``spec`` would.

    ``cache_dir=None`` compiles without any cache (a reference for output checks).
    By-model compiles read the model first, as a server that edits the graph or
    passes an ``ov.Model`` does; the timing includes that read because the
    server pays it too.

    :param core: the ``openvino.Core`` to compile on (the ``ovms`` and ``python`` profiles use their own).
    :param model_path: the model file (``.xml``/``.onnx``...) the server loads.
    :param spec: how the server compiles: device, properties, by-path or by-model, cache mode, key, profile.
    :param cache_dir: the cache directory, or ``None`` for an uncached reference compile.
    :param where: host/model/version/device for error messages.
    :param cipher: a cipher to reuse instead of loading the spec's key (its failure count tells a rejected key).
    """
    if spec.profile == "ovms":
        return _ovms_compile(model_path, spec, cache_dir)
    if spec.profile in ("python", "optimum", "genai"):
        return _python_load(model_path, spec, cache_dir, where or Location())
    if cipher is None and cache_dir is not None and spec.encryption_key_file:
        cipher = CacheCipher(load_key(spec.encryption_key_file, where))
    config = compile_config(spec, cache_dir, where, cipher)
    start = time.perf_counter()
    if spec.compile_mode == "model":
        model = core.read_model(str(model_path))
        compiled = core.compile_model(model, spec.device, config)
    else:
        compiled = core.compile_model(str(model_path), spec.device, config)
    seconds = time.perf_counter() - start
    loaded: bool | None
    try:
        loaded = bool(compiled.get_property("LOADED_FROM_CACHE"))
    except Exception:  # noqa: BLE001 - some devices do not report it
        loaded = None
    rejected = None if cipher is None else cipher.decrypt_failures > 0
    return Compiled(compiled, seconds, loaded, rejected)


def _ovms_compile(model_path: Path, spec: CacheSpec, cache_dir: Path | None) -> Compiled:
    """OpenVINO Model Server's preparation and compile (:mod:`.ovms`), on a Core of its own.

    OVMS sets ``CACHE_DIR`` on its Core, not in the compile properties; a Core of
    our own keeps that setting from leaking into the agent's other compiles.
    ``cache_dir=None`` is the fresh compile an inference check compares against.
    """
    import openvino as ov

    from .ovms import OvmsModel, compile_ovms, ovms_plugin_config, prepare_model, resolve_target_device

    model = OvmsModel.from_json(spec.profile_options)
    core = ov.Core()
    if cache_dir is None:
        device = resolve_target_device(model, core)
        prepared = prepare_model(core, str(model_path), model)
        start = time.perf_counter()
        compiled = core.compile_model(prepared, device, ovms_plugin_config(model, device=device))
        return Compiled(compiled, time.perf_counter() - start, False)
    compiled, seconds = compile_ovms(core, str(model_path), model, str(cache_dir))
    try:
        loaded: bool | None = bool(compiled.get_property("LOADED_FROM_CACHE"))
    except Exception:  # noqa: BLE001 - some devices do not report it
        loaded = None
    return Compiled(compiled, seconds, loaded)


def _python_load(model_path: Path, spec: CacheSpec, cache_dir: Path | None, where: Location) -> Compiled:
    """An in-house server's loader (:mod:`.pyloader`), optimum-intel's (:mod:`.optimum`) or GenAI's (:mod:`.genai`).

    Each in a fresh process: nothing compiled stays in ours. An unknown optimum model class or GenAI
    pipeline kind is refused here, before a child starts.
    """
    from .pyloader import model_dir_of, run_loader

    if spec.profile == "optimum":
        from .optimum import check_model_class

        check_model_class(spec.profile_options.get("model_class"), where)
    if spec.profile == "genai":
        from .genai import check_pipeline

        check_pipeline(spec.profile_options.get("pipeline"), where)

    properties = dict(spec.property_dict)
    if cache_dir is not None:
        properties["CACHE_DIR"] = str(cache_dir)
    seconds, loaded = run_loader(spec.profile, spec.profile_options, model_dir_of(model_path), spec.device, properties, where)
    return Compiled(None, seconds, loaded)
