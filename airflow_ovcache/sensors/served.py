"""Sensor: after a release, the server has read the warmed blob (evidence from the server's side)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import OvcacheEntrySensor

if TYPE_CHECKING:
    from ..hooks.conditions import ServedCondition


class OvcacheServedSensor(OvcacheEntrySensor):
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

    :param kwargs: the arguments of :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor`.
    """

    trigger_path = "airflow_ovcache.triggers.served:OvcacheServedTrigger"

    def __init__(
        self,
        *,
        model: str,
        version: int | str,
        devices: Sequence[str] | str | None = None,
        fail_when_unknown: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(model=model, version=version, devices=devices, **kwargs)
        self.fail_when_unknown = fail_when_unknown

    def condition(self) -> ServedCondition:
        """The server's read of the rendered model@version's blob, for the rendered devices."""
        from ..hooks.conditions import ServedCondition  # when the sensor pokes, not at parse time

        return ServedCondition(self.model, self.version_number(), self.device_names(), self.fail_when_unknown)
