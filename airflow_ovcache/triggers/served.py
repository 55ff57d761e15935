"""Trigger: the server has read the warmed blob of model@version on a host."""

from __future__ import annotations

from typing import Any

from ..hooks.conditions import Check, ServedCondition
from ..hooks.ovcache import OvcacheHook
from .base import OvcachePollTrigger


class OvcacheServedTrigger(OvcachePollTrigger):
    """
    Fire when the blob of ``model`` at ``version`` was read by someone other than the agent since it was published.

    :param model: the model.
    :param version: the version number.
    :param devices: devices whose blob must all have been read; empty means any device.
    :param fail_when_unknown: end with an ``error`` event when the host cannot tell (noatime or network mount).

    See :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger` for the other parameters; the
    ``timeout`` event names what is still not served.
    """

    def __init__(
        self, *, model: str, version: int, devices: list[str] | None = None, fail_when_unknown: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.version = int(version)
        self.devices = list(devices or [])
        self.fail_when_unknown = fail_when_unknown

    def condition_kwargs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "devices": self.devices,
            "fail_when_unknown": self.fail_when_unknown,
        }

    async def check(self, hook: OvcacheHook) -> Check:
        return await ServedCondition(self.model, self.version, self.devices, self.fail_when_unknown).apoll(hook)
