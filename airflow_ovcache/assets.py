"""Assets: model releases and per-host caches.

* A **model release** is ``ovmodel://<repository>/<model>``: ``<repository>`` is
  the name of a model repository (not a path), ``<model>`` a model in it. A
  release pipeline lists it as an outlet and puts the released version in the
  event's extra (``{"version": 7}``); a warm-up DAG scheduled on it reads the
  version back (``OvcacheWarmOperator(release=...)``). An
  :class:`~airflow_ovcache.triggers.new_version.OvcacheNewVersionTrigger` on
  the asset (an ``AssetWatcher``) emits the same event when a new version
  folder appears, with the version in ``extra["payload"]``.
* A **host cache** is ``ovcache://<host>/<model>``: the blobs of one model in
  one host's cache directory. The warm-up operator emits one such asset per
  host and model it warmed through every ``AssetAlias`` in its outlets, so a
  DAG can be scheduled on "the cache of model M on any host".

This module is imported by Airflow's providers manager to normalise these
URIs, so it must stay cheap: no OpenVINO, no paramiko, no trigger imports at
module level.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

from airflow.sdk import Asset

if TYPE_CHECKING:
    from airflow.sdk import AssetWatcher

MODEL_SCHEME = "ovmodel"
CACHE_SCHEME = "ovcache"
MODEL_GROUP = "ovmodel"
CACHE_GROUP = "ovcache"

# One path component, the names OVMS and the agent accept for models.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def _check_name(kind: str, value: str, uri: str) -> str:
    if not value or not _NAME.match(value) or value in (".", ".."):
        raise ValueError(f"{uri!r}: {kind} {value!r} must be one name of letters, digits, '.', '_', '+' or '-'")
    return value


def _two_parts(parts: SplitResult, first: str, example: str) -> SplitResult:
    uri = parts.geturl()
    if parts.query or parts.fragment:
        raise ValueError(f"{uri!r}: no query or fragment expected (like {example})")
    _check_name(first, parts.netloc, uri)
    path = parts.path.strip("/")
    if "/" in path:
        raise ValueError(f"{uri!r}: the path must be a single model name (like {example})")
    _check_name("model", path, uri)
    return parts._replace(path="/" + path)


def sanitize_model_uri(parts: SplitResult) -> SplitResult:
    """URI handler for ``ovmodel://<repository>/<model>`` (registered in the provider info).

    Refuses anything but one repository name and one model name, so that two
    spellings of a release cannot be two assets.

    :param parts: the split URI, as Airflow hands it over.
    :returns: the URI with its path normalised to ``/<model>``.
    """
    return _two_parts(parts, "repository", "ovmodel://models-prod/resnet50")


def sanitize_cache_uri(parts: SplitResult) -> SplitResult:
    """URI handler for ``ovcache://<host>/<model>`` (registered in the provider info).

    :param parts: the split URI, as Airflow hands it over.
    :returns: the URI with its path normalised to ``/<model>``.
    """
    return _two_parts(parts, "host", "ovcache://infer-03/resnet50")


def model_release_uri(repository: str, model: str) -> str:
    """The URI ``ovmodel://<repository>/<model>``, checked as Airflow will check it.

    :param repository: a name for the model repository (``models-prod``), not its path.
    :param model: the model's folder name in the repository.
    """
    uri = f"{MODEL_SCHEME}://{repository}/{model}"
    sanitize_model_uri(urlsplit(uri))
    return uri


def model_release(repository: str, model: str, *, watchers: list[AssetWatcher] | None = None, **kwargs: Any) -> Asset:
    """The release asset of ``model`` in the repository named ``repository``.

    :param repository: a name for the model repository (``models-prod``), not its path.
    :param model: the model's folder name in the repository.
    :param watchers: ``AssetWatcher`` s that emit release events (see :func:`watched_model_release`).
    :param kwargs: passed on to ``Asset`` (``extra``, ...).
    """
    uri = model_release_uri(repository, model)
    return Asset(uri=uri, name=uri, group=MODEL_GROUP, watchers=watchers or [], **kwargs)


def watched_model_release(
    repository: str,
    model: str,
    *,
    ovcache_conn_id: str,
    repository_path: str | None = None,
    poke_interval: float = 60.0,
    fire_for_existing: bool = False,
) -> Asset:
    """A release asset that an event trigger updates when a new version folder of ``model`` appears.

    The trigger lists the repository through the agent on the host of ``ovcache_conn_id``
    (its ``repository`` unless ``repository_path`` is given) every ``poke_interval`` seconds
    and fires once per new version; the version is in the event's ``extra["payload"]``.

    :param repository: a name for the model repository (``models-prod``), not its path.
    :param model: the model's folder name in the repository.
    :param ovcache_conn_id: the ``ovcache`` connection of a host that sees the repository.
    :param repository_path: the repository's root on that host; default the connection's ``repository``.
    :param poke_interval: seconds between two listings.
    :param fire_for_existing: also fire for the versions already there at the first listing.
    """
    from airflow.sdk import AssetWatcher

    from .triggers.new_version import OvcacheNewVersionTrigger

    trigger = OvcacheNewVersionTrigger(
        ovcache_conn_id=ovcache_conn_id,
        repository=repository_path,
        repository_name=repository,
        models=[model],
        poke_interval=poke_interval,
        fire_for_existing=fire_for_existing,
    )
    return model_release(repository, model, watchers=[AssetWatcher(name=f"ovmodel-{repository}-{model}", trigger=trigger)])


def host_cache(host: str, model: str, **kwargs: Any) -> Asset:
    """The asset for the cached blobs of ``model`` on ``host`` (``ovcache://<host>/<model>``).

    :param host: the host's name, as the agent reports it.
    :param model: the model.
    :param kwargs: passed on to ``Asset`` (``extra``, ...).
    """
    uri = f"{CACHE_SCHEME}://{host}/{model}"
    sanitize_cache_uri(urlsplit(uri))
    return Asset(uri=uri, name=uri, group=CACHE_GROUP, **kwargs)


def parse_model_release(uri: str) -> tuple[str, str]:
    """``(repository, model)`` of an ``ovmodel://`` URI.

    :param uri: a model release URI; anything else raises ``ValueError``.
    """
    parts = urlsplit(uri)
    if parts.scheme != MODEL_SCHEME:
        raise ValueError(f"{uri!r} is not an {MODEL_SCHEME}:// model release URI")
    parts = sanitize_model_uri(parts)
    return parts.netloc, parts.path.strip("/")


def versions_from_extra(extra: Mapping[str, Any] | None) -> list[int]:
    """The version(s) one release event carries.

    A release pipeline writes ``{"version": 7}`` (or ``{"versions": [6, 7]}``); an
    ``AssetWatcher`` event carries the trigger's payload under ``"payload"``.

    :param extra: an asset event's ``extra``; ``None`` or empty gives no versions.
    """
    if not extra:
        return []
    found: list[int] = []
    payload = extra.get("payload")
    if isinstance(payload, Mapping):
        found += versions_from_extra(payload)
    from .core.values import parse_count

    value = extra.get("version")
    versions = extra.get("versions") or []
    if isinstance(versions, (str, bytes)) or not isinstance(versions, (list, tuple)):
        # "versions": "12" would otherwise be versions 1 and 2.
        raise ValueError(f"release event extra versions={versions!r} is not a list of version numbers")
    try:
        if value is not None and value != "":
            found.append(parse_count(value, minimum=1))
        found += [parse_count(item, minimum=1) for item in versions]
    except ValueError as exc:
        raise ValueError(f"release event extra {dict(extra)!r}: version {exc}") from None
    return found


def release_versions(triggering_asset_events: Any, release_uri: str) -> list[int]:
    """Versions of every triggering event of the release ``release_uri``, ascending and unique.

    :param triggering_asset_events: ``context["triggering_asset_events"]`` (a mapping of
        asset to events).
    :param release_uri: the ``ovmodel://`` URI of the release whose events count.
    """
    if not triggering_asset_events:
        return []
    wanted = Asset(uri=release_uri).uri  # normalised the same way as the events' assets
    versions: set[int] = set()
    for asset in triggering_asset_events:
        if getattr(asset, "uri", None) != wanted:
            continue
        for event in _events(triggering_asset_events, asset):
            versions.update(versions_from_extra(getattr(event, "extra", None)))
    return sorted(versions)


def _events(accessor: Any, key: Any) -> Iterable[Any]:
    try:
        return accessor[key] or ()
    except KeyError:
        return ()
