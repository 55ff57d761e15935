"""Trigger: a device is present on a host and can cache compiled models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import OvcachePollTrigger

if TYPE_CHECKING:
    from ..hooks.conditions import DeviceCondition  # noqa: F401 - named in the quoted base below


class OvcacheDeviceTrigger(OvcachePollTrigger["DeviceCondition"]):
    """
    Fire when ``device`` is present on the host and reports ``EXPORT_IMPORT``.

    :param device: the OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``).
    :param fail_when_cannot_cache: end with an error event if the device is present but
        cannot cache (waiting does not fix that); otherwise keep waiting.

    :param kwargs: the arguments of :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger`.
    """

    def __init__(self, *, device: str, fail_when_cannot_cache: bool = True, **kwargs: Any) -> None:
        from ..hooks.conditions import DeviceCondition  # not at parse time: see triggers/base.py

        super().__init__(DeviceCondition(device, fail_when_cannot_cache), **kwargs)
