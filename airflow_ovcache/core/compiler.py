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

from .encryption import CacheCipher, load_key
from .errors import Where
from .spec import CacheSpec


def compile_config(
    spec: CacheSpec, cache_dir: Path | None, where: Where | None = None, cipher: CacheCipher | None = None
) -> dict[str, Any]:
    """The ``compile_model`` config for ``spec``; ``cipher`` overrides the key the spec names."""
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
    compiled: Any
    seconds: float
    loaded_from_cache: bool | None
    # True when OpenVINO found a blob but the key could not decrypt it (it then
    # recompiled silently); None when the spec is not encrypted.
    key_rejected: bool | None = None


def serving_compile(
    core: Any,
    model_path: Path,
    spec: CacheSpec,
    cache_dir: Path | None,
    where: Where | None = None,
    cipher: CacheCipher | None = None,
) -> Compiled:
    """Compile ``model_path`` exactly as a server configured with ``spec`` would.

    ``cache_dir=None`` compiles without any cache (a reference for output checks).
    By-model compiles read the model first, as a server that edits the graph or
    passes an ``ov.Model`` does; the timing includes that read because the
    server pays it too.
    """
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
