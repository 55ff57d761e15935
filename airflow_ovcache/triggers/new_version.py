"""Event trigger for ``AssetWatcher``: one event per new version folder in a model repository."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from ..hooks.errors import (
    AgentNotInstalled,
    AgentTooOld,
    ConnectionConfigError,
    HostKeyMismatch,
    HostKeyNotPinned,
    OvcacheHookError,
)
from .base import poke_interval_seconds

# Errors that polling again will not fix: the watcher fails loudly instead of retrying forever.
FATAL = (ConnectionConfigError, AgentNotInstalled, AgentTooOld, HostKeyMismatch, HostKeyNotPinned)
STATE_KEY = "ovcache_seen_versions"


class OvcacheNewVersionTrigger(BaseEventTrigger):
    """
    Watch a model repository and fire once per new ``<model>/<version>/`` folder.

    Meant for an ``AssetWatcher`` on a model release asset (see
    :func:`airflow_ovcache.assets.watched_model_release`). The first listing is the
    baseline: versions already there do not fire unless ``fire_for_existing``.
    After that each new version fires exactly once, in ascending order, with the
    payload ``{"repository", "model", "version", "versions", "host", "path"}``; a
    version is never fired twice, even if its folder is removed and re-created.
    The versions seen are kept in the asset's state store when the triggerer
    provides one, so a triggerer restart neither repeats nor loses versions.

    Transient failures (an unreachable host, a timeout) are logged and polled
    again; a missing or too old agent, a bad connection or a host key problem
    raises.

    :param ovcache_conn_id: the ``ovcache`` connection of a host that sees the repository.
    :param repository: repository root on that host; default the connection's.
    :param repository_name: the repository's name in ``ovmodel://<name>/<model>`` (payload only).
    :param models: only these models; default every model in the repository.
    :param poke_interval: seconds between two listings.
    :param fire_for_existing: also fire for the versions present at the first listing.
    """

    def __init__(
        self,
        *,
        ovcache_conn_id: str,
        repository: str | None = None,
        repository_name: str | None = None,
        models: list[str] | None = None,
        poke_interval: float = 60.0,
        fire_for_existing: bool = False,
    ) -> None:
        super().__init__()
        self.ovcache_conn_id = ovcache_conn_id
        self.repository = repository
        self.repository_name = repository_name
        self.models = list(models) if models else None
        self.poke_interval = poke_interval_seconds(poke_interval)
        self.fire_for_existing = fire_for_existing
        self._seen: dict[str, set[int]] | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that rebuild this trigger in the triggerer."""
        return (
            "airflow_ovcache.triggers.new_version.OvcacheNewVersionTrigger",
            {
                "ovcache_conn_id": self.ovcache_conn_id,
                "repository": self.repository,
                "repository_name": self.repository_name,
                "models": self.models,
                "poke_interval": self.poke_interval,
                "fire_for_existing": self.fire_for_existing,
            },
        )

    # -- what has been seen -------------------------------------------------------------------
    async def _load_seen(self) -> dict[str, set[int]] | None:
        if self._seen is not None:
            return self._seen
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        try:
            stored = await store.aget(STATE_KEY)
        except Exception as exc:  # noqa: BLE001 - no usable store: fall back to memory
            self.log.warning("cannot read the asset state store (%s); remembering versions in memory only", exc)
            return None
        if not isinstance(stored, dict):
            return None
        return {str(m): {int(v) for v in vs} for m, vs in stored.items()}

    async def _save_seen(self, seen: dict[str, set[int]]) -> None:
        self._seen = seen
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(STATE_KEY, {m: sorted(vs) for m, vs in sorted(seen.items())})
        except Exception as exc:  # noqa: BLE001 - memory still prevents repeats in this process
            self.log.warning("cannot write the asset state store (%s); remembering versions in memory only", exc)

    # -- the loop -----------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """List the repository every ``poke_interval`` seconds and yield one event per new version, for ever."""
        # Here, not at the top: a DAG with watched release assets builds this trigger when it is parsed.
        from ..hooks.ovcache import OvcacheHook

        hook = OvcacheHook(self.ovcache_conn_id, repository=self.repository)
        seen = await self._load_seen()
        while True:
            try:
                report = await hook.amodels()
            except FATAL:
                raise
            except OvcacheHookError as exc:
                self.log.warning("listing the repository failed, will try again in %gs: %s", self.poke_interval, exc)
                await asyncio.sleep(self.poke_interval)
                continue
            current = {m.name: set(m.versions) for m in report.models if self.models is None or m.name in self.models}
            if seen is None:
                seen = {} if self.fire_for_existing else {m: set(vs) for m, vs in current.items()}
                await self._save_seen(seen)
                if not self.fire_for_existing:
                    self.log.info(
                        "baseline of %s on host %s: %s",
                        report.repository,
                        report.host,
                        ", ".join(f"{m} {sorted(vs)}" for m, vs in sorted(current.items())) or "no models",
                    )
            for model in sorted(current):
                for version in sorted(current[model] - seen.get(model, set())):
                    seen.setdefault(model, set()).add(version)
                    # Saved before the event leaves: a restart after this point cannot fire it again.
                    await self._save_seen(seen)
                    self.log.info("new version %s@%s in %s on host %s", model, version, report.repository, report.host)
                    yield TriggerEvent(
                        {
                            "repository": self.repository_name,
                            "model": model,
                            "version": version,
                            "versions": sorted(current[model]),
                            "host": report.host,
                            "path": report.repository,
                        }
                    )
            await asyncio.sleep(self.poke_interval)
