"""Trigger: a valid blob for model@version exists on a host."""

from __future__ import annotations

from typing import Any

from ..hooks.conditions import BlobCondition, Check
from ..hooks.ovcache import OvcacheHook
from .base import OvcachePollTrigger


class OvcacheBlobTrigger(OvcachePollTrigger):
    """
    Fire when the host's cache holds a verified blob of ``model`` at ``version``.

    :param model: the model.
    :param version: the version number.
    :param devices: devices that must all have a valid blob; empty means any device.
    :param load_check: also require that a compile following the entry's profile loads the blob from cache.

    See :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger` for the other parameters.
    """

    def __init__(
        self, *, model: str, version: int, devices: list[str] | None = None, load_check: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.version = int(version)
        self.devices = list(devices or [])
        self.load_check = load_check

    def condition_kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "devices": self.devices, "load_check": self.load_check}

    async def check(self, hook: OvcacheHook) -> Check:
        return await BlobCondition(self.model, self.version, self.devices, self.load_check).apoll(hook)
