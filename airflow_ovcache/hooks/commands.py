"""The agent's command lines, built by plain functions over small request types.

Each request says what one agent command is asked to do, with the connection's
defaults already filled in by the hook (:class:`~.ovcache.OvcacheHook`); each
builder turns one into the arguments after ``ovcache <command> --json``, and
nothing else: no Airflow, no connection, no agent. That keeps every flag and
every refusal testable on its own (``tests/provider/hooks/test_commands.py``),
and the hook's methods short: build a request, build its arguments, run the
agent, read its answer.

A value the agent would refuse is refused here first, with
:class:`RequestError` naming the argument, so that a DAG's mistake fails
before anything runs on the host; the hook turns it into a
:class:`~.errors.ConnectionConfigError` with the host's coordinates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..core import profile_options, values
from ..protocol.location import Location

__all__ = [
    "DevicesRequest",
    "InstallRequest",
    "InvalidateRequest",
    "ModelsRequest",
    "ReleaseRequest",
    "Request",
    "RequestError",
    "RewarmRequest",
    "StatusRequest",
    "StorePutRequest",
    "VerifyRequest",
    "WarmRequest",
    "agent_argv",
    "command_args",
    "devices_argv",
    "install_argv",
    "invalidate_argv",
    "models_argv",
    "release_argv",
    "rewarm_argv",
    "status_argv",
    "store_put_argv",
    "verify_argv",
    "warm_argv",
]

MAX_VERSION = 10**18 - 1


class RequestError(ValueError):
    """A request the agent cannot be asked: a required value is missing, or a value is out of range.

    :param argument: the request's field, named as the operator or hook argument is (``cache_dir``).
    :param problem: what is wrong with its value; ``None`` when no value was given at all.
    :param needed_by: for a missing value, what needs it and what it looks like, when the name alone
        does not say (``profile optimum needs an OVModelForXxx class``).
    """

    def __init__(self, argument: str, problem: str | None = None, needed_by: str | None = None) -> None:
        self.argument = argument
        self.problem = problem
        self.needed_by = needed_by
        missing = f"no {argument} given" + (f" ({needed_by})" if needed_by else "")
        super().__init__(f"argument {argument}: {problem}" if problem else missing)

    @property
    def missing(self) -> bool:
        """True when the argument was not given (the connection has no value for it either)."""
        return self.problem is None


def _checked(name: str, value: Any, parse: Callable[[Any], Any]) -> Any:
    """``value`` read as the agent would read its flag; a refusal names the argument."""
    try:
        return parse(value)
    except ValueError as exc:
        raise RequestError(name, str(exc)) from None


def _required(name: str, value: str | None) -> str:
    if not value:
        raise RequestError(name)
    return value


def _version_number(value: Any) -> int:
    return values.parse_count(value, minimum=1, maximum=MAX_VERSION)


def _repeated(flag: str, items: Sequence[str]) -> list[str]:
    return [part for item in items for part in (flag, item)]


def _ovms_args(ovms_config: str, path_map: Sequence[tuple[str, str]]) -> list[str]:
    """``--ovms-config`` and one ``--ovms-path-map SERVER=AGENT`` per mapping."""
    return ["--ovms-config", ovms_config, *_repeated("--ovms-path-map", [f"{server}={agent}" for server, agent in path_map])]


def _profile_option_args(profile: str | None, model_class: str | None, pipeline: str | None) -> list[str]:
    """``--model-class`` (the ``optimum`` profile needs one) and ``--pipeline`` (``genai``'s, optional).

    An option of another profile than the request's is refused, as the connection and the inventory refuse it.
    """
    found = profile_options.problem(profile, {"model_class": model_class, "pipeline": pipeline})
    if found is None:
        return [*(["--model-class", model_class] if model_class else []), *(["--pipeline", pipeline] if pipeline else [])]
    if found.kind == "missing":
        raise RequestError(found.key, needed_by=f"profile {found.owner} needs {profile_options.EXAMPLE[found.key]}")
    if found.kind == "misplaced":
        raise RequestError(
            found.key,
            f"{found.value!r} is the {found.owner} profile's, but the profile is {profile or 'openvino'}: "
            f"set profile {found.owner}",
        )
    raise RequestError(found.key, found.unknown_text)


@dataclass(frozen=True)
class WarmRequest:
    """``ovcache warm``: compile model versions into the cache as the server would.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param repository: the model repository root on the host (required).
    :param models: the models to warm; empty means every model in the repository.
    :param versions: a version policy (``latest:1``, ``all``, ``specific:1,3``); ignored when
        ``version_numbers`` is given.
    :param version_numbers: exact version numbers to warm (each 1 or more).
    :param devices: the devices to compile for; empty means the agent's default (CPU). Not passed
        with ``ovms_config``: the server's config says how it compiles.
    :param properties: OpenVINO compile properties, ``KEY=VALUE`` each.
    :param compile_mode: how the server calls ``compile_model`` (``path`` or ``model``).
    :param cache_mode: OpenVINO ``CACHE_MODE`` (``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``).
    :param model_file: the model file inside each version folder, when it is not the only one.
    :param serving_config: a serving config (TOML or JSON) on the host with per-model cache specs.
    :param encryption_key_file: a cache encryption key file on the host.
    :param no_cache_device: what to do with a device that cannot cache (the agent's ``--no-cache-device``).
    :param confirm: load each new blob back, as the server would, before reporting it warmed.
    :param force: rebuild blobs that are already warm.
    :param profile: the serving profile; ``openvino`` (the default) is not passed.
    :param loader: a custom loader that compiles as the serving application does.
    :param loader_path: where that loader is found on the host.
    :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class (required with it, refused without it).
    :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``, the agent's default; refused with another profile).
    :param ovms_config: an OpenVINO Model Server ``config.json`` on the host; the server's own
        settings then say what to compile.
    :param ovms_path_map: ``(server path, agent path)`` pairs for paths in that config.
    """

    command: ClassVar[str] = "warm"

    cache_dir: str | None
    repository: str | None
    models: Sequence[str] = ()
    versions: str | None = None
    version_numbers: Sequence[int] = ()
    devices: Sequence[str] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    compile_mode: str | None = None
    cache_mode: str | None = None
    model_file: str | None = None
    serving_config: str | None = None
    encryption_key_file: str | None = None
    no_cache_device: str | None = None
    confirm: bool = False
    force: bool = False
    profile: str | None = None
    loader: str | None = None
    loader_path: str | None = None
    model_class: str | None = None
    pipeline: str | None = None
    ovms_config: str | None = None
    ovms_path_map: Sequence[tuple[str, str]] = ()

    def location(self, host: str) -> Location:
        """What the request is about, as a failure names it before the agent answers.

        :param host: the host's name.
        """
        if self.version_numbers:
            version = ", ".join(str(n) for n in self.version_numbers)
        else:
            version = self.versions or "latest:1"
        if self.devices:
            device = ", ".join(self.devices)
        else:
            device = "(from the OVMS config)" if self.ovms_config else "CPU"
        return Location(host, ", ".join(self.models) if self.models else "(all in the repository)", version, device)


def warm_argv(request: WarmRequest) -> list[str]:
    """The arguments of ``ovcache warm`` for ``request``.

    :param request: what to warm.
    :raises RequestError: no cache directory or repository, a version number below 1, or a
        ``model_class`` without the ``optimum`` profile (or that profile without one).
    """
    args = ["--cache-dir", _required("cache_dir", request.cache_dir), "--repository", _required("repository", request.repository)]
    args += _repeated("--model", request.models)
    if request.version_numbers:
        args += _repeated(
            "--version-number", [str(_checked("version_numbers", n, _version_number)) for n in request.version_numbers]
        )
    elif request.versions:
        args += ["--versions", request.versions]
    if request.ovms_config:
        # The server's own config.json says how it compiles; nothing else about the compile is passed.
        args += _ovms_args(request.ovms_config, request.ovms_path_map)
    else:
        args += _repeated("--device", request.devices)
        args += _repeated("--property", [f"{key}={value}" for key, value in request.properties.items()])
        for flag, value in (
            ("--compile-mode", request.compile_mode),
            ("--cache-mode", request.cache_mode),
            ("--model-file", request.model_file),
            # A key file on the host; without one, a key connection's key goes on stdin (the hook adds it).
            ("--encryption-key-file", request.encryption_key_file),
            ("--config", request.serving_config),
        ):
            if value:
                args += [flag, value]
        if request.profile and request.profile != "openvino":
            args += ["--profile", request.profile]
        if request.loader:
            args += ["--loader", request.loader]
        if request.loader_path:
            args += ["--loader-path", request.loader_path]
        args += _profile_option_args(request.profile, request.model_class, request.pipeline)
    if request.no_cache_device:
        args += ["--no-cache-device", request.no_cache_device]
    if request.confirm:
        args.append("--confirm")
    if request.force:
        args.append("--force")
    return args


@dataclass(frozen=True)
class VerifyRequest:
    """``ovcache verify``: check that each managed blob would serve the deployed model.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param model: check only this model's blobs.
    :param version: check only this version (1 or more).
    :param device: check only this device's blobs.
    :param load_check: load each blob with OpenVINO, as the server would.
    :param infer_check: also run one inference on each loaded blob.
    :param checksum: the checksum policy (the agent's ``--checksum``).
    """

    command: ClassVar[str] = "verify"

    cache_dir: str | None
    model: str | None = None
    version: int | None = None
    device: str | None = None
    load_check: bool = False
    infer_check: bool = False
    checksum: str | None = None

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return Location(host, self.model, None if self.version is None else str(self.version), self.device)


def verify_argv(request: VerifyRequest) -> list[str]:
    """The arguments of ``ovcache verify`` for ``request``.

    :param request: what to verify.
    :raises RequestError: no cache directory, or a version below 1.
    """
    args = ["--cache-dir", _required("cache_dir", request.cache_dir)]
    if request.model:
        args += ["--model", request.model]
    if request.version is not None:
        args += ["--version", str(_checked("version", request.version, _version_number))]
    if request.device:
        args += ["--device", request.device]
    if request.load_check:
        args.append("--load-check")
    if request.infer_check:
        args.append("--infer-check")
    if request.checksum:
        args += ["--checksum", request.checksum]
    return args


@dataclass(frozen=True)
class RewarmRequest:
    """``ovcache rewarm``: verify, rebuild what a warm can fix, verify again.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param load_check: load each blob with OpenVINO while verifying.
    :param confirm: load each rebuilt blob back before reporting it repaired.
    """

    command: ClassVar[str] = "rewarm"

    cache_dir: str | None
    load_check: bool = True
    confirm: bool = True

    def location(self, host: str) -> Location:
        """The host the request is about.

        :param host: the host's name.
        """
        return Location(host)


def rewarm_argv(request: RewarmRequest) -> list[str]:
    """The arguments of ``ovcache rewarm`` for ``request``.

    :param request: the repair to run.
    :raises RequestError: no cache directory.
    """
    args = ["--cache-dir", _required("cache_dir", request.cache_dir)]
    if request.load_check:
        args.append("--load-check")
    if not request.confirm:
        args.append("--no-confirm")
    return args


@dataclass(frozen=True)
class InvalidateRequest:
    """``ovcache invalidate``: remove blobs of retired versions, stale and foreign blobs.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param models: only these models' blobs; empty means every model.
    :param versions: the version policy to keep (``latest:2``); without it, the ``ovms_config``'s
        own version policies, else every version in the repository.
    :param stale: remove blobs of model files that changed.
    :param foreign: remove blobs of another OpenVINO runtime or CPU.
    :param orphans: remove blob files no manifest entry records.
    :param orphan_min_age: seconds an orphan must be old before it is removed (0 or more).
    :param max_bytes: a size budget for the cache (bytes, or ``"20G"``); the oldest blobs go first.
    :param dry_run: only report what would be removed.
    :param ovms_config: an OpenVINO Model Server ``config.json`` on the host; passed only without
        ``versions``, to keep what the server's version policies serve.
    :param ovms_path_map: ``(server path, agent path)`` pairs for paths in that config.
    """

    command: ClassVar[str] = "invalidate"

    cache_dir: str | None
    models: Sequence[str] = ()
    versions: str | None = None
    stale: bool = True
    foreign: bool = True
    orphans: bool = False
    orphan_min_age: float | None = None
    max_bytes: str | int | None = None
    dry_run: bool = False
    ovms_config: str | None = None
    ovms_path_map: Sequence[tuple[str, str]] = ()

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return Location(host, ", ".join(self.models) if self.models else None, self.versions)


def invalidate_argv(request: InvalidateRequest) -> list[str]:
    """The arguments of ``ovcache invalidate`` for ``request``.

    :param request: what to remove.
    :raises RequestError: no cache directory, a negative or non-finite ``orphan_min_age``, or a
        ``max_bytes`` that is not a size.
    """
    args = ["--cache-dir", _required("cache_dir", request.cache_dir)]
    if request.ovms_config and not request.versions:
        args += _ovms_args(request.ovms_config, request.ovms_path_map)  # keep what the server's own version policies serve
    args += _repeated("--model", request.models)
    if request.versions:
        args += ["--versions", request.versions]
    if not request.stale:
        args.append("--no-stale")
    if not request.foreign:
        args.append("--no-foreign")
    if request.orphans:
        args.append("--orphans")
    if request.orphan_min_age is not None:
        args += ["--orphan-min-age", repr(_checked("orphan_min_age", request.orphan_min_age, values.parse_seconds))]
    if request.max_bytes is not None:
        args += ["--max-bytes", str(_checked("max_bytes", request.max_bytes, values.parse_size))]
    if request.dry_run:
        args.append("--dry-run")
    return args


@dataclass(frozen=True)
class StatusRequest:
    """``ovcache status``: what the cache directory holds.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    """

    command: ClassVar[str] = "status"

    cache_dir: str | None

    def location(self, host: str) -> Location:
        """The host the request is about.

        :param host: the host's name.
        """
        return Location(host)


def status_argv(request: StatusRequest) -> list[str]:
    """The arguments of ``ovcache status`` for ``request``.

    :param request: the cache to describe.
    :raises RequestError: no cache directory.
    """
    return ["--cache-dir", _required("cache_dir", request.cache_dir)]


@dataclass(frozen=True)
class DevicesRequest:
    """``ovcache devices``: the host's devices and whether they can cache.

    :param devices: only these devices; empty means every device OpenVINO sees.
    """

    command: ClassVar[str] = "devices"

    devices: Sequence[str] = ()

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return Location(host, device=", ".join(self.devices) or None)


def devices_argv(request: DevicesRequest) -> list[str]:
    """The arguments of ``ovcache devices`` for ``request``.

    :param request: the devices to describe.
    """
    return _repeated("--device", request.devices)


@dataclass(frozen=True)
class ModelsRequest:
    """``ovcache models``: the models and versions in the host's repository.

    :param repository: the model repository root on the host (required).
    :param models: only these models; empty means every model.
    :param versions: the version policy to list (``all`` by default).
    """

    command: ClassVar[str] = "models"

    repository: str | None
    models: Sequence[str] = ()
    versions: str = "all"

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return Location(host, ", ".join(self.models) if self.models else None)


def models_argv(request: ModelsRequest) -> list[str]:
    """The arguments of ``ovcache models`` for ``request``.

    :param request: the repository to list.
    :raises RequestError: no repository.
    """
    return [
        "--repository",
        _required("repository", request.repository),
        "--versions",
        request.versions,
        *_repeated("--model", request.models),
    ]


@dataclass(frozen=True)
class ReleaseRequest:
    """``ovcache release``: one model version's whole release on the host, in one agent process.

    The agent checks the version folder is there (waiting up to ``wait``), that the devices can
    cache, warms the version (confirmed by a load in a fresh process), verifies it with a load
    check and invalidates what ``retain`` no longer keeps, stopping at the first failing step.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param repository: the model repository root on the host (required).
    :param model: the model released (required).
    :param version: the version released (required, 1 or more).
    :param devices: the devices to check and compile for; empty means the agent's default (CPU).
        With ``ovms_config`` they are only checked: the server's config says how it compiles.
    :param properties: OpenVINO compile properties, ``KEY=VALUE`` each.
    :param compile_mode: how the server calls ``compile_model`` (``path`` or ``model``).
    :param cache_mode: OpenVINO ``CACHE_MODE`` (``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``).
    :param model_file: the model file inside each version folder, when it is not the only one.
    :param serving_config: a serving config (TOML or JSON) on the host with per-model cache specs.
    :param encryption_key_file: a cache encryption key file on the host.
    :param profile: the serving profile; ``openvino`` (the default) is not passed.
    :param loader: a custom loader that compiles as the serving application does.
    :param loader_path: where that loader is found on the host.
    :param model_class: the ``optimum`` profile's ``OVModelForXxx`` class (required with it, refused without it).
    :param pipeline: the ``genai`` profile's pipeline kind (``LLMPipeline``, the agent's default; refused with another profile).
    :param ovms_config: an OpenVINO Model Server ``config.json`` on the host.
    :param ovms_path_map: ``(server path, agent path)`` pairs for paths in that config.
    :param retain: the version policy the invalidate step keeps (``latest:2``); empty keeps what the
        ``ovms_config``'s version policies serve, else every version.
    :param wait: seconds the agent waits for the version folder (0: it looks once).
    :param force: rebuild the blobs even when they are up to date.
    :param store: a blob store on the host: the warm step puts what it compiled there (a builder).
    :param from_store: with ``store``, the warm step installs the host's class's set instead (an installer).
    """

    command: ClassVar[str] = "release"

    cache_dir: str | None
    repository: str | None
    model: str | None
    version: int | None
    devices: Sequence[str] = ()
    properties: Mapping[str, Any] = field(default_factory=dict)
    compile_mode: str | None = None
    cache_mode: str | None = None
    model_file: str | None = None
    serving_config: str | None = None
    encryption_key_file: str | None = None
    profile: str | None = None
    loader: str | None = None
    loader_path: str | None = None
    model_class: str | None = None
    pipeline: str | None = None
    ovms_config: str | None = None
    ovms_path_map: Sequence[tuple[str, str]] = ()
    retain: str | None = None
    wait: float = 0.0
    force: bool = False
    store: str | None = None
    from_store: bool = False

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        device = ", ".join(self.devices) if self.devices else "CPU"
        return Location(host, self.model, None if self.version is None else str(self.version), device)


def release_argv(request: ReleaseRequest) -> list[str]:
    """The arguments of ``ovcache release`` for ``request``.

    The compile flags are the warm's (:func:`warm_argv`): the release's warm step must compile
    exactly as a separate warm would.

    :param request: what to release.
    :raises RequestError: no cache directory, repository, model or version; a version below 1;
        a negative or non-finite ``wait``; a ``model_class`` without the ``optimum`` profile (or that
        profile without one).
    """
    model = _required("model", request.model)
    if request.version is None:
        raise RequestError("version")
    version = _checked("version", request.version, _version_number)
    compile_args = warm_argv(
        WarmRequest(
            cache_dir=request.cache_dir,
            repository=request.repository,
            devices=() if request.ovms_config else request.devices,
            properties=request.properties,
            compile_mode=request.compile_mode,
            cache_mode=request.cache_mode,
            model_file=request.model_file,
            serving_config=request.serving_config,
            encryption_key_file=request.encryption_key_file,
            force=request.force,
            profile=request.profile,
            loader=request.loader,
            loader_path=request.loader_path,
            model_class=request.model_class,
            pipeline=request.pipeline,
            ovms_config=request.ovms_config,
            ovms_path_map=request.ovms_path_map,
        )
    )
    args = [*compile_args, "--model", model, "--version", str(version)]
    if request.ovms_config:
        args += _repeated("--device", request.devices)  # checked only; the server's config says how it compiles
    if request.retain:
        args += ["--retain", request.retain]
    if request.wait:
        args += ["--wait", repr(_checked("wait", request.wait, values.parse_seconds))]
    if request.from_store and not request.store:
        raise RequestError("store", "from_store needs a store (the blob store to install from)")
    if request.store:
        args += ["--store", request.store, *(["--from-store"] if request.from_store else [])]
    return args


@dataclass(frozen=True)
class StorePutRequest:
    """``ovcache store-put``: put verified managed entries into a blob store, under the host's hardware class.

    :param cache_dir: OpenVINO ``cache_dir`` on the host (required).
    :param store: the blob store as the host reaches it: a directory that exists (required).
    :param model: only this model's entries; None for every entry.
    :param version: only this version's (1 or more).
    :param device: only this device's.
    """

    command: ClassVar[str] = "store-put"

    cache_dir: str | None
    store: str | None
    model: str | None = None
    version: int | None = None
    device: str | None = None

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return Location(host, self.model, None if self.version is None else str(self.version), self.device)


def store_put_argv(request: StorePutRequest) -> list[str]:
    """The arguments of ``ovcache store-put`` for ``request``.

    :param request: what to put.
    :raises RequestError: no cache directory or store, or a version below 1.
    """
    args = ["--cache-dir", _required("cache_dir", request.cache_dir), "--store", _required("store", request.store)]
    if request.model:
        args += ["--model", request.model]
    if request.version is not None:
        args += ["--version", str(_checked("version", request.version, _version_number))]
    if request.device:
        args += ["--device", request.device]
    return args


@dataclass(frozen=True)
class InstallRequest:
    """``ovcache install``: install model versions from a blob store (the host's class), else compile them there.

    :param warm: what to install and how the server compiles it, exactly as a warm of the same versions
        (``confirm``, ``force`` and ``no_cache_device`` are not install's: it always proves each item by a load).
    :param store: the blob store as the host reaches it: a directory that exists (required).
    :param compile_if_unreachable: a store that cannot be reached makes every item a fallback compiled
        on the host (each saying why) instead of an error.
    """

    command: ClassVar[str] = "install"

    warm: WarmRequest
    store: str | None
    compile_if_unreachable: bool = False

    def location(self, host: str) -> Location:
        """What the request is about (see :meth:`WarmRequest.location`).

        :param host: the host's name.
        """
        return self.warm.location(host)


def install_argv(request: InstallRequest) -> list[str]:
    """The arguments of ``ovcache install`` for ``request``: the warm's selection and compile flags, and ``--store``.

    :param request: what to install.
    :raises RequestError: no cache directory, repository or store; a version number below 1; a warm-only flag set.
    """
    for name in ("confirm", "force", "no_cache_device"):
        if getattr(request.warm, name):
            raise RequestError(name, "install always proves each item by a load and takes no such option")
    args = [*warm_argv(request.warm), "--store", _required("store", request.store)]
    return [*args, "--compile-if-unreachable"] if request.compile_if_unreachable else args


Request = (
    WarmRequest
    | VerifyRequest
    | RewarmRequest
    | InvalidateRequest
    | StatusRequest
    | DevicesRequest
    | ModelsRequest
    | ReleaseRequest
    | StorePutRequest
    | InstallRequest
)

_BUILDERS: dict[type, Callable[[Any], list[str]]] = {
    WarmRequest: warm_argv,
    VerifyRequest: verify_argv,
    RewarmRequest: rewarm_argv,
    InvalidateRequest: invalidate_argv,
    StatusRequest: status_argv,
    DevicesRequest: devices_argv,
    ModelsRequest: models_argv,
    ReleaseRequest: release_argv,
    StorePutRequest: store_put_argv,
    InstallRequest: install_argv,
}


def command_args(request: Request) -> list[str]:
    """The arguments of ``request``'s command, by its builder.

    :param request: any of the request types above.
    :raises RequestError: as that command's builder does.
    """
    return _BUILDERS[type(request)](request)


def agent_argv(command: str, args: Sequence[str], host_name: str | None = None) -> list[str]:
    """The whole command line after the agent's own command: ``<command> --json [--host-name H] <args>``.

    :param command: the agent command (``warm``, ``verify``...).
    :param args: that command's arguments (from its builder).
    :param host_name: the name the agent reports the host by (a fleet inventory name), if set.
    """
    argv = [command, "--json"]
    if host_name:
        argv += ["--host-name", host_name]
    return [*argv, *args]
