"""Planning a warm: from what was asked (a :class:`WarmRequest`) to the ordered items a warm compiles.

A model or version that cannot be warmed becomes a failed result of its own
here, before anything is compiled, so one release still being copied does not
keep every other model on the host cold. Two sources of serving settings are
planned here: the agent's own (a serving config plus flags) and OpenVINO Model
Server's ``config.json`` (:mod:`.ovms_plan`), whose settings are the server's
and may not be overridden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..protocol.location import Location
from .encryption import STDIN
from .errors import ModelNotFound, OvcacheError, UsageError, this_host
from .warm import FAILED, WarmItem, WarmResult


@dataclass(frozen=True)
class WarmRequest:
    """What a warm was asked to compile and how, as the command line gave it.

    :param repository: the model repository root (``<model>/<version>/``).
    :param models: models to warm; empty for every model in the repository.
    :param versions: the version policy (``latest:2``); None for the default (``latest:1``).
    :param version_numbers: exact versions to warm instead of a policy.
    :param config: a serving config (TOML or JSON) with per-model cache specs.
    :param devices: devices to warm for (default CPU, or the config's).
    :param properties: compile properties as ``KEY=VALUE`` texts.
    :param compile_mode: ``path`` or ``model``; None for the config's or the default.
    :param cache_mode: ``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``; None for the default.
    :param model_file: the file in each version folder the server loads, if there are several.
    :param encryption_key_file: a host-local key file for encrypted blobs.
    :param encryption_key_stdin: the key was read from standard input instead.
    :param profile: the serving profile (``openvino``, ``python``, ``optimum`` or ``genai``).
    :param loader: the python profile's loader, ``package.module:function``.
    :param loader_path: a folder the loader is imported from.
    :param model_class: the optimum profile's ``OVModelForXxx`` class.
    :param pipeline: the genai profile's pipeline kind (``LLMPipeline``).
    :param ovms_config: OpenVINO Model Server's ``config.json``: warm what it serves, as it compiles.
    :param ovms_path_map: ``SERVER=AGENT`` prefixes for base paths the server sees elsewhere.
    """

    repository: Path
    models: list[str] = field(default_factory=list)
    versions: str | None = None
    version_numbers: list[int] = field(default_factory=list)
    config: Path | None = None
    devices: list[str] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)
    compile_mode: str | None = None
    cache_mode: str | None = None
    model_file: str | None = None
    encryption_key_file: str | None = None
    encryption_key_stdin: bool = False
    profile: str | None = None
    loader: str | None = None
    loader_path: str | None = None
    model_class: str | None = None
    pipeline: str | None = None
    ovms_config: Path | None = None
    ovms_path_map: list[str] = field(default_factory=list)


@dataclass
class WarmPlan:
    """The items of a warm in order, the repository they come from, and warnings found while planning.

    :param repository: the :class:`~.repository.ModelRepository` planned from.
    :param items: a ``(ModelVersion, CacheSpec)`` to compile, or a failed :class:`~.warm.WarmResult`.
    :param warnings: what planning noticed that does not stop the warm.
    """

    repository: Any
    items: list[WarmItem | WarmResult]
    warnings: list[str]


def plan_request(request: WarmRequest, cache_dir: Path) -> WarmPlan:
    """Check a warm request and plan its items; a request that cannot run raises :class:`~.errors.UsageError`.

    :param request: what was asked.
    :param cache_dir: the cache directory it will warm into (refused inside the repository).
    """
    from .policy import VersionPolicy
    from .repository import ModelRepository
    from .spec import ServingConfig, parse_property
    from .warm import refuse_cache_inside

    repo = ModelRepository(request.repository)
    refuse_cache_inside(Path(os.path.abspath(cache_dir)), repo.root)
    config = ServingConfig.load(request.config) if request.config else ServingConfig()
    overrides: dict[str, Any] = {
        "devices": request.devices or None,
        "properties": dict(parse_property(p) for p in request.properties),
        "compile_mode": request.compile_mode,
        "cache_mode": request.cache_mode,
        "model_file": request.model_file,
        "encryption_key_file": STDIN if request.encryption_key_stdin else request.encryption_key_file,
    }
    if request.encryption_key_stdin and request.encryption_key_file:
        raise UsageError("give either --encryption-key-file or --encryption-key-stdin, not both")
    if request.version_numbers and request.versions:
        raise UsageError("give either --versions or --version-number, not both")
    if request.ovms_config:
        items, warnings = _ovms_items(request, repo)
        return WarmPlan(repo, items, warnings)
    overrides["profile"] = request.profile
    if request.profile == "python" or request.loader:
        from .pyloader import check_loader

        if request.profile != "python" or not request.loader:
            raise UsageError("the python profile takes a loader: give --profile python --loader package.module:function")
        overrides["profile_options"] = {"loader": check_loader(request.loader)}
        if request.loader_path:
            overrides["profile_options"]["python_path"] = os.path.abspath(request.loader_path)
    if request.model_class:
        if request.profile != "optimum":
            raise UsageError("--model-class is the optimum profile's: give --profile optimum --model-class OVModelForXxx")
        overrides["profile_options"] = {"model_class": request.model_class}
    if request.pipeline:
        if request.profile != "genai":
            raise UsageError("--pipeline is the genai profile's: give --profile genai --pipeline LLMPipeline")
        overrides["profile_options"] = {"pipeline": request.pipeline}
    policy = VersionPolicy.parse(request.versions or "latest:1")
    models = request.models or repo.models()
    if not models:
        raise UsageError(f"repository {repo.root} holds no models")
    return WarmPlan(repo, plan_warm(repo, config, models, policy, request.version_numbers or None, overrides), [])


def _ovms_items(request: WarmRequest, repo: Any) -> tuple[list[WarmItem | WarmResult], list[str]]:
    """Warm items from OVMS's config.json; the compile settings are the server's, so flags for them are refused."""
    from .ovms_plan import ovms_warm_items, parse_path_map
    from .policy import VersionPolicy

    given = [
        flag
        for flag, value in (
            ("--device", request.devices),
            ("--property", request.properties),
            ("--compile-mode", request.compile_mode),
            ("--cache-mode", request.cache_mode),
            ("--model-file", request.model_file),
            ("--config", request.config),
            ("--profile", request.profile),
            ("--loader", request.loader),
            ("--model-class", request.model_class),
            ("--pipeline", request.pipeline),
            ("--encryption-key-file", request.encryption_key_file),
            ("--encryption-key-stdin", request.encryption_key_stdin),
        )
        if value
    ]
    if given:
        raise UsageError(
            f"{', '.join(given)} cannot be combined with --ovms-config: the server's config.json says how it compiles",
            hint="change target_device, plugin_config, shape, batch_size or layout in config.json instead",
        )
    assert request.ovms_config is not None
    policy = VersionPolicy.parse(request.versions) if request.versions else None
    return ovms_warm_items(
        request.ovms_config,
        repo,
        parse_path_map(request.ovms_path_map),
        request.models or None,
        policy,
        request.version_numbers or None,
    )


def planning_failure(exc: OvcacheError, model: str, version: int | None, device: str) -> WarmResult:
    """A version folder (or model) that cannot be warmed, as a failed item of its own instead of an aborted run.

    :param exc: why it cannot be warmed.
    :param model: the model.
    :param version: the version, or None for the model as a whole.
    :param device: the device it was to be warmed for.
    """
    where = Location(host=this_host(), model=model, version=version, device=device)
    exc.at(where)
    return WarmResult(model, version, device, FAILED, exc.one_line(), error=exc.to_json())


def plan_warm(
    repository: Any,
    config: Any,
    models: list[str],
    policy: Any,
    version_numbers: list[int] | None,
    overrides: dict[str, Any],
) -> list[WarmItem | WarmResult]:
    """What a warm of ``models`` compiles, in order; a model or version that cannot be warmed is a failed result.

    One release still being copied (an empty version folder, two model files, a
    model with no version yet) must not keep every other model on the host cold:
    it becomes a ``failed`` item naming its model and version, and the rest is
    planned as usual. A model name that is not in the repository at all (or not a
    plain name) is still the command's error: it was asked for by mistake.

    :param repository: the :class:`~.repository.ModelRepository`.
    :param config: the :class:`~.spec.ServingConfig` with per-model cache specs.
    :param models: the models to warm.
    :param policy: the :class:`~.policy.VersionPolicy` selecting versions.
    :param version_numbers: exact versions instead of the policy.
    :param overrides: spec settings from the command line (devices, properties, profile, ...).
    """
    requested = ",".join(overrides.get("devices") or []) or "CPU"
    planned: list[WarmItem | WarmResult] = []
    for model in models:
        # A model that is not in the repository at all was named by mistake (a typo in
        # --model): that is the command's error, not an item's.
        repository.model_dir(model)
        try:
            specs = config.specs_for(model, overrides)
            numbers = version_numbers or policy.select(repository.versions(model))
        except OvcacheError as exc:
            planned.append(planning_failure(exc, model, None, requested))
            continue
        if not numbers:
            for spec in specs:
                missing = ModelNotFound(
                    f"model {model} has no version folder in {repository.root}",
                    hint="copy a version folder (<model>/<N>/) into the repository, or leave the model out",
                )
                planned.append(planning_failure(missing, model, None, spec.device))
            continue
        for number in numbers:
            for spec in specs:
                try:
                    planned.append((repository.version(model, number, spec.model_file), spec))
                except OvcacheError as exc:
                    planned.append(planning_failure(exc, model, number, spec.device))
    return planned
