"""Sensor: a valid blob for model@version exists in a host's cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hooks.conditions import BlobCondition, Check
from ..operators.base import as_names, as_version_numbers, is_template
from ..triggers.blob import OvcacheBlobTrigger
from .base import OvcacheBaseSensor


class OvcacheBlobSensor(OvcacheBaseSensor):
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

    See :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor` for the other parameters.
    """

    label_fields = ("model", "version")
    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "cache_dir", "model", "version", "devices")

    def __init__(
        self,
        *,
        model: str,
        version: int | str,
        devices: Sequence[str] | str | None = None,
        load_check: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not model:
            raise ValueError("model is required")
        if not is_template(version):
            numbers = as_version_numbers(version)
            if not numbers or len(numbers) != 1:
                raise ValueError(f"version={version!r} must be one version number")
        self.model = model
        self.version = version
        self.devices = devices
        self.load_check = load_check

    def _version(self) -> int:
        numbers = as_version_numbers(self.version)
        if not numbers or len(numbers) != 1:
            raise ValueError(f"version={self.version!r} must be one version number")
        return numbers[0]

    def check(self) -> Check:
        return BlobCondition(self.model, self._version(), as_names(self.devices), self.load_check).poll(self.hook)

    def trigger(self) -> OvcacheBlobTrigger:
        return OvcacheBlobTrigger(
            model=self.model,
            version=self._version(),
            devices=as_names(self.devices),
            load_check=self.load_check,
            **self.trigger_common(),
        )
