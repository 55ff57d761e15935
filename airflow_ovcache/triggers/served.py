"""Trigger: the server has read the warmed blob of model@version on a host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import OvcachePollTrigger

if TYPE_CHECKING:
    from ..hooks.conditions import ServedCondition  # noqa: F401 - named in the quoted base below


class OvcacheServedTrigger(OvcachePollTrigger["ServedCondition"]):
    """
    Fire when the blob of ``model`` at ``version`` was read by someone other than the agent since it was published.

    :param model: the model.
    :param version: the version number.
    :param devices: devices whose blob must all have been read; empty means any device.
    :param fail_when_unknown: end with an ``error`` event when the host cannot tell (noatime or network mount).

    :param kwargs: the arguments of :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger`.

    The ``timeout`` event names what is still not served.
    """

    def __init__(
        self, *, model: str, version: int, devices: list[str] | None = None, fail_when_unknown: bool = True, **kwargs: Any
    ) -> None:
        from ..hooks.conditions import ServedCondition  # not at parse time: see triggers/base.py

        super().__init__(ServedCondition(model, version, devices, fail_when_unknown), **kwargs)
