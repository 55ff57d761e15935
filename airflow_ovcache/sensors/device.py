"""Sensor: a device is present on a host and can cache compiled models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import OvcacheBaseSensor

if TYPE_CHECKING:
    from ..hooks.conditions import DeviceCondition


class OvcacheDeviceSensor(OvcacheBaseSensor):
    """
    Wait until ``device`` is present on the host and reports ``EXPORT_IMPORT``.

    A device without ``EXPORT_IMPORT`` writes no cache blob and raises nothing,
    so a warm-up for it would silently do nothing; this sensor makes that a
    visible gate. Returns ``{"host", "runtime", "name", "full_name", "can_cache", "capabilities"}``.

    :param device: the OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``). (templated)
    :param fail_when_cannot_cache: fail at once when the device is present but cannot
        cache (default); set to ``False`` to keep waiting (for a driver update, say).

    :param kwargs: the arguments of :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor`
        (here ``cache_dir`` is not templated: this sensor does not read the cache).
    """

    label_fields = ("device",)
    trigger_path = "airflow_ovcache.triggers.device:OvcacheDeviceTrigger"
    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "device")

    def __init__(self, *, device: str, fail_when_cannot_cache: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not device:
            raise ValueError("device is required")
        self.device = device
        self.fail_when_cannot_cache = fail_when_cannot_cache

    def condition(self) -> DeviceCondition:
        """The rendered device, present and able to cache."""
        from ..hooks.conditions import DeviceCondition  # when the sensor pokes, not at parse time

        return DeviceCondition(self.device, self.fail_when_cannot_cache)
