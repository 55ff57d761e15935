"""Sensor: a valid blob for model@version exists in a host's cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import OvcacheEntrySensor

if TYPE_CHECKING:
    from ..hooks.conditions import BlobCondition


class OvcacheBlobSensor(OvcacheEntrySensor):
    """
    Wait until the host's cache holds a verified blob of ``model`` at ``version``.

    "Verified" is the agent's ``verify``: present, intact, written by this
    runtime for this CPU, and built from the model files deployed now (with
    ``load_check``, also loaded from cache by a compile following the entry's profile; that
    is not proof the server reads it: see :class:`~.served.OvcacheServedSensor`). Returns
    ``{"host", "cache_dir", "model", "version", "devices": {device: status}, "blobs": {...}}``.

    :param model: the model. (templated)
    :param version: the version number. (templated)
    :param devices: devices that must all have a valid blob; default any device. (templated)
    :param load_check: also require a load from cache in a fresh process.

    :param kwargs: the arguments of :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor`.
    """

    label_fields = ("model", "version")
    trigger_path = "airflow_ovcache.triggers.blob:OvcacheBlobTrigger"

    def __init__(
        self,
        *,
        model: str,
        version: int | str,
        devices: Sequence[str] | str | None = None,
        load_check: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, version=version, devices=devices, **kwargs)
        self.load_check = load_check

    def condition(self) -> BlobCondition:
        """A valid blob of the rendered model@version for the rendered devices."""
        from ..hooks.conditions import BlobCondition  # when the sensor pokes, not at parse time

        return BlobCondition(self.model, self.version_number(), self.device_names(), self.load_check)
