"""From OpenVINO Model Server's own ``config.json`` to warm items and retention policies.

A team running OVMS points the agent at the file its server already reads: the
models, their ``base_path``, ``target_device``, ``plugin_config``, ``shape``,
``batch_size``, ``layout`` and ``model_version_policy`` all come from there, and
each version is warmed with the ``ovms`` profile (:mod:`.ovms`), which replays
OVMS's preparation. Invalidation keeps what that policy serves.

Per model, what cannot be warmed is an item of its own, never the end of the
run: a ``base_path`` outside the repository the agent guards, a version folder
without a model file OVMS reads, a model OVMS itself does not cache (``shape``
or ``batch_size`` ``auto``: reported as ``skipped``, "OVMS does not cache this
model"). Entries this project does not manage at all (MediaPipe and LLM graphs,
custom loaders) are reported as warnings, by name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..protocol.location import Location
from .errors import OvcacheError, UsageError, this_host
from .policy import VersionPolicy
from .repository import MODEL_SUFFIXES, ModelRepository, ModelVersion
from .spec import CacheSpec
from .warm import SKIPPED, WarmItem, WarmResult
from .warmplan import planning_failure


def parse_path_map(pairs: list[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``SERVER=AGENT`` pairs (or a table): where the agent finds what OVMS sees under another mount point.

    Both sides must be absolute; trailing slashes are dropped. Raises :class:`UsageError` otherwise.

    :param pairs: ``--ovms-path-map`` values, or a table of server path to agent path; ``None`` for no mapping.
    """
    if not pairs:
        return {}
    if isinstance(pairs, Mapping):
        items = list(pairs.items())
    else:
        items = []
        for pair in pairs:
            server, sep, agent = str(pair).partition("=")
            if not sep:
                raise UsageError(f"path map {pair!r} is not SERVER=AGENT", hint="for example --ovms-path-map /models=/srv/models")
            items.append((server, agent))
    out = {}
    for server, agent in items:
        if not isinstance(server, str) or not isinstance(agent, str) or not server.startswith("/") or not agent.startswith("/"):
            raise UsageError(f"path map {server!r}={agent!r}: both sides must be absolute paths")
        out[server.rstrip("/") or "/"] = agent.rstrip("/") or "/"
    return out


def _inside(path: Path, root: Path) -> bool:
    real, real_root = os.path.realpath(path), os.path.realpath(root)
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def ovms_warm_items(
    config_path: str | os.PathLike[str],
    repository: ModelRepository,
    path_map: Mapping[str, str] | None = None,
    models: list[str] | None = None,
    policy: VersionPolicy | None = None,
    version_numbers: list[int] | None = None,
) -> tuple[list[WarmItem | WarmResult], list[str]]:
    """Warm items for every model of an OVMS config (or those named), and warnings for what is not managed.

    Versions are what the model's ``model_version_policy`` serves, unless ``policy``
    or ``version_numbers`` say otherwise (a release warms the one version it ships).

    :param config_path: the OVMS ``config.json``.
    :param repository: the repository the agent guards; a ``base_path`` outside it is a failed item.
    :param path_map: server path to agent path, for a server that mounts the models elsewhere.
    :param models: the model names to plan; ``None`` plans every model in the config.
    :param policy: a version policy that replaces each model's own.
    :param version_numbers: exact versions to warm, ahead of any policy.
    """
    from .ovms import caching_disabled_reason, ovms_model_file, ovms_served_versions, ovms_versions, read_ovms_config

    found = read_ovms_config(config_path, path_map)
    warnings = [f"OVMS config {found.path}, model {n.name}: not managed: {n.reason}" for n in found.not_managed]
    chosen = found.models
    if models:
        names = {m.name for m in found.models}
        unknown = [m for m in models if m not in names]
        if unknown:
            raise UsageError(
                f"OVMS config {found.path} has no model {', '.join(unknown)}",
                hint=f"models in it: {', '.join(sorted(names)) or 'none'}",
                where=Location(model=unknown[0]),
            )
        chosen = [m for m in found.models if m.name in models]
    items: list[WarmItem | WarmResult] = []
    core: Any = None
    for model in chosen:
        base = Path(model.local_base_path or model.base_path)
        device = model.target_device
        if device is None:
            if core is None:
                import openvino as ov

                core = ov.Core()
            from .ovms import resolve_target_device

            device = resolve_target_device(model, core)
        if not _inside(base, repository.root):
            err = UsageError(
                f"OVMS config {found.path}, model {model.name}: base_path {model.base_path} (here {base}) is outside the repository {repository.root}",
                hint="point --repository at the folder that holds the models, or map the server's path with --ovms-path-map SERVER=AGENT",
            )
            items.append(planning_failure(err, model.name, None, device))
            continue
        reason = caching_disabled_reason(model)
        if reason:
            where = Location(this_host(), model.name, None, device)
            items.append(WarmResult(model.name, None, device, SKIPPED, f"{where.label()}: {reason}; nothing to warm"))
            continue
        try:
            available = ovms_versions(base)
        except OSError as exc:
            err = UsageError(f"OVMS config {found.path}, model {model.name}: cannot list {base}: {exc.strerror}")
            items.append(planning_failure(err, model.name, None, device))
            continue
        if version_numbers:
            numbers = sorted(version_numbers)
        elif policy is not None:
            numbers = policy.select(available)
        else:
            numbers = sorted(ovms_served_versions(model, available))
        if not numbers:
            err = UsageError(
                f"OVMS config {found.path}, model {model.name}: no version folder under {base} that its policy serves",
                hint="copy a version folder (<base_path>/<N>/) into place, or check model_version_policy",
            )
            items.append(planning_failure(err, model.name, None, device))
            continue
        for number in numbers:
            folder = base / str(number)
            try:
                if not folder.is_dir():
                    raise UsageError(f"OVMS config {found.path}, model {model.name}: version folder {folder} does not exist")
                model_file = Path(ovms_model_file(folder))
            except OvcacheError as exc:
                items.append(planning_failure(exc, model.name, number, device))
                continue
            version = ModelVersion(model.name, number, folder, model_file, MODEL_SUFFIXES.get(model_file.suffix.lower(), "other"))
            spec = CacheSpec.make(device=device, profile="ovms", profile_options=model.to_json(), model_file=model_file.name)
            items.append((version, spec))
    return items, warnings


def ovms_retention(config_path: str | os.PathLike[str], path_map: Mapping[str, str] | None = None) -> dict[str, VersionPolicy]:
    """Per model, the version policy OVMS serves by: what invalidation keeps when given the server's config.

    :param config_path: the OVMS ``config.json``.
    :param path_map: server path to agent path, as for :func:`ovms_warm_items`.
    """
    from .ovms import read_ovms_config

    found = read_ovms_config(config_path, path_map)
    return {m.name: VersionPolicy.parse(m.model_version_policy) for m in found.models}
