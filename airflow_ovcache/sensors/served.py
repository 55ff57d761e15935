"""Sensor: after a release, the server has read the warmed blob (evidence from the server's side)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hooks.conditions import Check, ServedCondition
from ..operators.base import as_names, as_version_numbers, is_template
from ..triggers.served import OvcacheServedTrigger
from .base import OvcacheBaseSensor


class OvcacheServedSensor(OvcacheBaseSensor):
    """
    Wait until the server has read the warmed blob of ``model`` at ``version`` on the host.

    A warm-up with ``confirm`` proves that a compile following the spec's profile
    loads the blob; it cannot prove the real server compiles the same call. This
    sensor waits for the evidence that it did: the blob's access time moved after
    it was published, by a read that was not the agent's (the agent reads blobs
    with ``O_NOATIME``). The entry must also verify ``ok``. Returns
    ``{"host", "cache_dir", "model", "version", "devices": {device: state}, "served_at": {device: time}}``.

    .. note::
        Access times need a ``relatime`` (the Linux default) or ``strictatime`` mount.
        On a ``noatime`` or network mount the host cannot tell, and the sensor fails at
        once (``fail_when_unknown``) rather than wait for ever. Any reader counts as
        the server: a backup tool reading the cache directory makes a blob ``served``.
        A server that never restarts after the release never reads the new blob.

    :param model: the model. (templated)
    :param version: the version number. (templated)
    :param devices: devices whose blob must all have been read; default any device. (templated)
    :param fail_when_unknown: fail when the host cannot tell (default True); False keeps waiting.

    See :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor` for the other parameters.
    """

    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "cache_dir", "model", "version", "devices")

    def __init__(
        self,
        *,
        model: str,
        version: int | str,
        devices: Sequence[str] | str | None = None,
        fail_when_unknown: bool = True,
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
        self.fail_when_unknown = fail_when_unknown

    def _version(self) -> int:
        numbers = as_version_numbers(self.version)
        if not numbers or len(numbers) != 1:
            raise ValueError(f"version={self.version!r} must be one version number")
        return numbers[0]

    def check(self) -> Check:
        return ServedCondition(self.model, self._version(), as_names(self.devices), self.fail_when_unknown).poll(self.hook)

    def trigger(self) -> OvcacheServedTrigger:
        return OvcacheServedTrigger(
            model=self.model,
            version=self._version(),
            devices=as_names(self.devices),
            fail_when_unknown=self.fail_when_unknown,
            **self.trigger_common(),
        )
