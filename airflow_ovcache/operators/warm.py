"""Warm-up: compile model versions into one host's OpenVINO cache, as the server would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, AssetAlias

from ..assets import host_cache, parse_model_release, release_versions
from ..core import profile_options
from ..core.text import human_bytes, printable
from .arguments import as_flag, as_names, as_version_numbers, check_choice, is_template, json_object, path_map
from .base import OvcacheBaseOperator, reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The report types are for the type checker: the hook's readers are imported where the task runs,
    # not when a DAG file is parsed.
    from ..hooks.reports import InstallReport, WarmItem, WarmReport


def _item_reason(item: WarmItem, conn_id: str = "", host: str = "") -> str:
    # The agent's reason repeats the coordinates; the error's message is the reason alone.
    if item.error is None:
        return item.reason
    if not item.error.hint:
        return item.error.message
    from ..hooks.errors import airflow_hint

    hint = airflow_hint(item.error.hint, conn_id, host) if conn_id else item.error.hint
    return f"{item.error.message} ({hint})"


class OvcacheWarmOperator(OvcacheBaseOperator):
    """
    Compile model versions for one or more devices into one host's cache.

    The agent on the host compiles each (model, version, device) exactly as the
    serving application does and publishes the blob whole; entries whose files,
    blob, runtime and CPU are unchanged are not recompiled. Returns a compact
    result for XCom: ``{"host", "cache_dir", "repository", "summary", "items": [...]}``.
    Fails if any item fails, naming its host, model, version and device.

    Map it over hosts and models with ``partial().expand()``::

        OvcacheWarmOperator.partial(task_id="warm", versions="latest:2").expand(
            ovcache_conn_id=["infer_01", "infer_02"], models=["resnet50", "bert"]
        )

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param models: model name(s) to warm; a list, one name, or comma-separated.
        Default: the release's model if ``release`` is set, else every model in the repository. (templated)
    :param versions: version policy, OVMS words: ``latest:N``, ``specific:3,5``, ``all``.
        Default ``latest:1``. (templated)
    :param version_numbers: exact version number(s) instead of a policy. (templated)
    :param devices: device(s) to warm for; default the connection's devices, else CPU. (templated)
    :param properties: compile properties the server sets, e.g. ``{"PERFORMANCE_HINT": "LATENCY"}``. (templated)
    :param compile_mode: ``path`` (the server compiles by path, default) or ``model``. (templated)
    :param cache_mode: ``OPTIMIZE_SPEED`` or ``OPTIMIZE_SIZE``. (templated)
    :param model_file: the file in each version folder the server loads, if there are several. (templated)
    :param encryption_key_file: a key file on the host (0600) for ``CACHE_ENCRYPTION_CALLBACKS``;
        or set ``encryption_key_conn_id`` to send a key kept in Airflow. (templated)
    :param serving_config: serving config (TOML/JSON) on the host with per-model cache specs. (templated)
    :param profile: how the server compiles, ``openvino`` (default), ``python`` (its own loader),
        ``optimum`` (optimum-intel's ``from_pretrained``, with ``model_class``) or ``genai`` (OpenVINO
        GenAI's ``LLMPipeline``); default the connection's.
        See docs/serving-profiles.md. (templated)
    :param loader: for the ``python`` profile, the server's loader ``package.module:function``. (templated)
    :param loader_path: for the ``python`` profile, a folder on the host to import the loader from. (templated)
    :param model_class: for the ``optimum`` profile, the class the server loads with, e.g.
        ``OVModelForFeatureExtraction``; default the connection's. Refused with another profile. (templated)
    :param pipeline: for the ``genai`` profile, the pipeline the server constructs (``LLMPipeline``, the
        default); default the connection's. Refused with another profile. (templated)
    :param ovms_config: OpenVINO Model Server's ``config.json`` on the host: its models, devices, plugin
        config, shapes, layouts and version policies say what is warmed and how (the ``ovms`` profile);
        compile arguments are then not allowed. Default the connection's. (templated)
    :param ovms_path_map: with ``ovms_config``: where the agent finds paths the server sees under
        another mount point, ``{"/models": "/srv/models"}``. (templated)
    :param repository: model repository root on the host; default the connection's. (templated)
    :param cache_dir: OpenVINO ``cache_dir`` on the host; default the connection's. (templated)
    :param no_cache_device: ``fail`` (default) or ``skip`` a device that cannot cache.
    :param confirm: after publishing, check in a fresh process that a compile following the spec's serving
        profile loads the blob from cache (proof for the profile's call, not for the server: the served
        evidence, :class:`~airflow_ovcache.sensors.served.OvcacheServedSensor`, speaks for the server).
    :param force: recompile even entries that are up to date.
    :param release: an ``ovmodel://`` release asset (or its URI). When the run was triggered by
        events of that asset, warm the version(s) they carry instead of ``versions``.
    :param store: a blob store on the host (a directory there, absolute; docs/fleet.md). Without
        ``from_store``, the task is its hardware class's builder: after the warm, what it compiled for
        the selected versions is put into the store, filed under the host's class (a put that fails is
        a warning in the log and the XCom's ``store_put``, not a failure: this host's cache is warm, and
        the class's other hosts fall back to compiling). (templated)
    :param from_store: with ``store``, install instead of compiling: each item is fetched from the store
        for this host's class, checked, published and proven with a load from cache; an item whose set
        is missing or fails a check is compiled here, and the item's ``fallback`` says why. (templated)
    :param relay_from: with ``from_store``, for stores kept on each host (inventory ``store_relay``):
        ``{"conn_id", "host", "store", "class"}`` of the class's builder. Before the install, the
        builder's sets of the release for that class are copied from its store into this host's
        ``store`` over the two hosts' connections (:mod:`~airflow_ovcache.hooks.store_relay`). With a
        hub in object storage (inventory ``store_hub``), ``{"hub", "conn_id", "class"}``: the sets are
        copied from the hub instead. A relay that fails is a warning, and the install then falls back
        to compiling. (templated)
    :param relay_to: without ``from_store``, for the builder of hosts sharing a hub (inventory
        ``store_hub``): ``{"hub", "conn_id", "class", "retain"}``. After the put, what was put for that
        class is copied from this host's ``store`` up to the hub (``conn_id``: the hub's Airflow
        connection), then the hub is pruned of the class's versions ``retain`` no longer keeps (no
        ``retain``: not pruned); a copy or prune that fails is a warning in the log and the XCom's
        ``relayed``, as a failed put is. (templated)
    :param command_timeout: seconds the agent may run; default the connection's.
    :param kwargs: to :class:`.OvcacheBaseOperator` (``host_name``, ``encryption_key_conn_id``) and BaseOperator (``task_id``...).
    """

    label_fields = ("models", "version_numbers")
    template_fields: Sequence[str] = (
        "ovcache_conn_id",
        "host_name",
        "models",
        "versions",
        "version_numbers",
        "devices",
        "properties",
        "compile_mode",
        "cache_mode",
        "model_file",
        "encryption_key_file",
        "serving_config",
        "repository",
        "cache_dir",
        "profile",
        "loader",
        "loader_path",
        "model_class",
        "pipeline",
        "ovms_config",
        "ovms_path_map",
        "store",
        "from_store",
        "relay_from",
        "relay_to",
    )
    template_fields_renderers = {"properties": "json"}
    ui_color = "#b9dcf5"

    def __init__(
        self,
        *,
        models: Sequence[str] | str | None = None,
        versions: str | None = None,
        version_numbers: Sequence[int] | int | str | None = None,
        devices: Sequence[str] | str | None = None,
        properties: dict[str, Any] | None = None,
        compile_mode: str | None = None,
        cache_mode: str | None = None,
        model_file: str | None = None,
        encryption_key_file: str | None = None,
        serving_config: str | None = None,
        repository: str | None = None,
        no_cache_device: str = "fail",
        confirm: bool = False,
        force: bool = False,
        release: Asset | str | None = None,
        profile: str | None = None,
        loader: str | None = None,
        loader_path: str | None = None,
        model_class: str | None = None,
        pipeline: str | None = None,
        ovms_config: str | None = None,
        ovms_path_map: dict[str, str] | str | None = None,
        store: str | None = None,
        from_store: bool | str = False,
        relay_from: dict[str, Any] | None = None,
        relay_to: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(store, str) and store and not is_template(store) and not store.startswith("/"):
            raise ValueError(f"store must be an absolute path on the host, not {store!r}")
        self.store = store
        self.from_store = from_store
        self.relay_from = relay_from
        self.relay_to = relay_to
        check_choice("profile", profile, (*profile_options.NAMED_PROFILES, None))
        for key, value in (("model_class", model_class), ("pipeline", pipeline)):
            check_choice(key, value, (*profile_options.KNOWN[key], None))
            owner = profile_options.OWNER[key]
            if value and profile and not is_template(value) and not is_template(profile) and profile != owner:
                raise ValueError(f"{key}={value!r} is the {owner} profile's: pass profile={owner!r}, not {profile!r}")
        self.profile = profile
        self.loader = loader
        self.loader_path = loader_path
        self.model_class = model_class
        self.pipeline = pipeline
        self.ovms_config = ovms_config
        self.ovms_path_map = ovms_path_map
        check_choice("no_cache_device", no_cache_device, ("fail", "skip"))
        check_choice("compile_mode", compile_mode, ("path", "model"))
        if isinstance(cache_mode, str) and not is_template(cache_mode):
            cache_mode = cache_mode.upper()
        check_choice("cache_mode", cache_mode, ("OPTIMIZE_SPEED", "OPTIMIZE_SIZE"))
        if versions and version_numbers not in (None, "", []):
            raise ValueError("give either versions (a policy) or version_numbers, not both")
        if version_numbers is not None and not is_template(version_numbers):
            as_version_numbers(version_numbers)  # fail at parse time on a bad number
        if properties is not None and not isinstance(properties, (dict, str)) and not is_template(properties):
            raise ValueError("properties must be a dict of compile properties")
        release_uri = release.uri if isinstance(release, Asset) else release
        if release_uri:
            parse_model_release(release_uri)
        self.models = models
        self.versions = versions
        self.version_numbers = version_numbers
        self.devices = devices
        self.properties = properties
        self.compile_mode = compile_mode
        self.cache_mode = cache_mode
        self.model_file = model_file
        self.encryption_key_file = encryption_key_file
        self.serving_config = serving_config
        self.repository = repository
        self.no_cache_device = no_cache_device
        self.confirm = confirm
        self.force = force
        self.release = release_uri

    def hook_overrides(self) -> dict[str, Any]:
        """The base operator's overrides plus the task's model repository."""
        return {**super().hook_overrides(), "repository": self.repository or None}

    def _selection(self, context: Context) -> tuple[list[str] | None, str | None, list[int] | None]:
        models = as_names(self.models)
        versions = self.versions or None
        numbers = as_version_numbers(self.version_numbers)
        if self.release:
            _, release_model = parse_model_release(self.release)
            models = models or [release_model]
            released = release_versions(context.get("triggering_asset_events"), self.release)
            if released:
                self.log.info("release %s: warming version(s) %s from the triggering event(s)", self.release, released)
                return models, None, released
            self.log.info("no event of release %s in this run; warming %s", self.release, numbers or versions or "latest:1")
        return models, versions, numbers

    @reporting_failures
    def execute(self, context: Context) -> dict[str, Any]:
        """Compile (or, ``from_store``, install) what is missing or stale on the host; failed items fail the task.

        :param context: the task's context.
        """
        from ..hooks.reports import BUILDER, INSTALLER

        models, versions, numbers = self._selection(context)
        selection: dict[str, Any] = {
            "models": models,
            "versions": versions,
            "version_numbers": numbers,
            "devices": as_names(self.devices),
            "properties": json_object(self.properties, "properties"),
            "compile_mode": self.compile_mode,
            "cache_mode": self.cache_mode,
            "model_file": self.model_file,
            "encryption_key_file": self.encryption_key_file or None,
            "serving_config": self.serving_config,
            "profile": self.profile or None,
            "loader": self.loader or None,
            "loader_path": self.loader_path or None,
            "model_class": self.model_class or None,
            "pipeline": self.pipeline or None,
            "ovms_config": self.ovms_config or None,
            "ovms_path_map": path_map(self.ovms_path_map),
        }
        store = self.store or None
        if store and as_flag(self.from_store, "from_store"):
            relayed = self._relay(store, models, numbers) if self.relay_from else None
            # A store this host cannot reach (a lost mount, say) makes every item a fallback compiled
            # here: what the host would have done without a store.
            install = self.hook.install(store=store, compile_if_unreachable=True, **selection)
            self._log_report(install)
            self._emit_cache_assets(context, install)
            self._fail_on(install.failed, len(install.items), install.host)
            return {**install.to_xcom(), "role": INSTALLER, **({"relayed": relayed} if relayed else {})}
        report = self.hook.warm(**selection, no_cache_device=self.no_cache_device, confirm=self.confirm, force=self.force)
        self._log_report(report)
        self._emit_cache_assets(context, report)
        self._fail_on(report.failed, len(report.items), report.host)
        if not store:
            return report.to_xcom()
        put = self._put(report, store)
        up = self._relay_up(store, report) if self.relay_to else None
        return {**report.to_xcom(), "store": store, "role": BUILDER, "store_put": put, **({"relayed": up} if up else {})}

    def _relay_up(self, store: str, report: WarmReport) -> dict[str, Any]:
        """Copy what the put left in this builder's store up to its class's hub (see :func:`~.store_relay.relay_to_hub`)."""
        from ..hooks.store_relay import relay_to_hub

        released = sorted({(i.model, i.version) for i in report.items if i.version is not None})
        return relay_to_hub(
            self.hook,
            dict(self.relay_to or {}),
            store,
            sorted({m for m, _ in released}),
            sorted({int(v) for _, v in released if v is not None}),
            self.log,
        )

    def _relay(self, store: str, models: list[str] | None, numbers: list[int] | None) -> dict[str, Any]:
        """Copy the builder's sets of the release into this host's store (see :func:`~.store_relay.relay_release`)."""
        from ..hooks.store_relay import relay_release

        return relay_release(self.hook, dict(self.relay_from or {}), store, models or [], numbers or [], self.log)

    def _fail_on(self, failed: Sequence[WarmItem], total: int, host: str) -> None:
        if not failed:
            return
        from ..hooks.errors import ItemsFailed

        lines = "; ".join(f"{item.describe()}: {_item_reason(item, self.ovcache_conn_id, host)}" for item in failed)
        raise ItemsFailed(
            self.hook.target().with_host(host),
            f"{len(failed)} of {total} warm-up item(s) failed: {lines}",
            "the other items were published; fix the cause and rerun, unchanged items are not recompiled",
        )

    def _put(self, report: WarmReport, store: str) -> dict[str, Any]:
        """Put what this builder holds for the warmed versions into the store; a failed put is a warning.

        The builder's own cache is warm whatever happens here, so its release goes on; the
        class's other hosts find no set (or an older one) and compile for themselves, and their
        items say so. The XCom's ``store_put`` keeps what was stored and what was not.
        """
        from ..hooks.errors import OvcacheHookError
        from ..hooks.reports import not_stored
        from ..protocol.codes import PutStatus

        stored: list[dict[str, Any]] = []
        problems: list[str] = []
        for model, version in sorted({(i.model, i.version) for i in report.items if i.version is not None}):
            try:
                put = self.hook.store_put(store=store, model=model, version=version)
            except OvcacheHookError as exc:
                problems.append(str(exc))
                continue
            rows = [item.to_xcom() for item in put.items]
            stored.extend(rows)
            problems.extend(not_stored(report.host, rows))
        for item in stored:
            if item.get("status") == PutStatus.STORED:
                self.log.info(
                    "stored %s@%s %s in %s for class %s (object %s)",
                    item.get("model"),
                    item.get("version"),
                    item.get("device"),
                    store,
                    item.get("class_key"),
                    item.get("object"),
                )
        for problem in problems:
            self.log.warning(
                "%s (the other hosts of this class compile for themselves; this host's cache is warm)", printable(problem)
            )
        return {"store": store, "items": stored, "problems": problems}

    def _log_report(self, report: WarmReport | InstallReport) -> None:
        """The head line (what the agent did, counted by status), then one line per item."""
        from ..hooks.reports import InstallReport

        if isinstance(report, InstallReport):
            head = f"install on host {report.host} ({report.cache_dir}) from store {report.store}"
            counted = (("installed", "installed"), ("warmed", "compiled here (fell back)"), ("unchanged", "unchanged"))
        else:
            head = f"warm on host {report.host} ({report.cache_dir})"
            counted = (("warmed", "warmed"), ("unchanged", "unchanged"), ("skipped", "skipped"))
        counts = ", ".join(f"{report.summary.get(key, 0)} {words}" for key, words in (*counted, ("failed", "failed")))
        self.log.info("%s", printable(f"{head}: {counts} in {report.seconds:.2f}s"))
        self._log_items(report.items, report.warnings)

    def _log_items(self, items: Sequence[WarmItem], warnings: Sequence[str]) -> None:
        """One line per item (a warm's, or an install's with its object and fallback), then the agent's warnings."""
        for item in items:
            parts = [f"  {item.model}@{item.version} {item.device}: {item.status}"]
            stored = getattr(item, "object", None)
            if stored:
                parts.append(f"from object {stored[:12]}")
            if item.blob:
                parts.append(f"{item.blob} ({human_bytes(item.size)})")
            if item.compile_seconds is not None:
                parts.append(f"compiled in {item.compile_seconds:.2f}s")
            if item.load_ms is not None:
                # Proof for the profile's call, not for the server (see OvcacheServedSensor for that).
                verdict = "loads" if item.loaded_from_cache else "does NOT load"
                parts.append(f"a compile following its profile {verdict} from cache ({item.load_ms:.1f} ms)")
            if item.status in ("failed", "skipped"):
                parts.append(f"- {_item_reason(item)}")
            (self.log.warning if item.failed else self.log.info)("%s", printable(" ".join(parts)))
            fallback = getattr(item, "fallback", None)
            if fallback:
                self.log.warning("  fell back to a local compile: %s", printable(fallback))
        for warning in warnings:
            self.log.warning("  %s", printable(warning))

    def _emit_cache_assets(self, context: Context, report: WarmReport | InstallReport) -> None:
        """One ``ovcache://<host>/<model>`` event per warmed model, through each AssetAlias outlet."""
        aliases = [o for o in self.outlets if isinstance(o, AssetAlias)]
        if not aliases:
            return
        by_model: dict[str, list[Any]] = {}
        for item in report.items:
            if not item.failed:
                by_model.setdefault(item.model, []).append(item)
        outlet_events = context["outlet_events"]
        for model, items in sorted(by_model.items()):
            asset = host_cache(report.host, model)
            extra: dict[str, Any] = {
                "host": report.host,
                "cache_dir": report.cache_dir,
                "model": model,
                "versions": sorted({i.version for i in items}),
                "devices": sorted({i.device for i in items}),
                "warmed": sum(1 for i in items if i.status == "warmed"),
                "installed": sum(1 for i in items if i.status == "installed"),
            }
            for alias in aliases:
                outlet_events[alias].add(asset, extra=extra)
