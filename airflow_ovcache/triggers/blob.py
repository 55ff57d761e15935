"""Trigger: a valid blob for model@version exists on a host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import OvcachePollTrigger

if TYPE_CHECKING:
    from ..hooks.conditions import BlobCondition  # noqa: F401 - named in the quoted base below


class OvcacheBlobTrigger(OvcachePollTrigger["BlobCondition"]):
    """
    Fire when the host's cache holds a verified blob of ``model`` at ``version``.

    :param model: the model.
    :param version: the version number.
    :param devices: devices that must all have a valid blob; empty means any device.
    :param load_check: also require that a compile following the entry's profile loads the blob from cache.

    :param kwargs: the arguments of :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger`.
    """

    def __init__(
        self, *, model: str, version: int, devices: list[str] | None = None, load_check: bool = False, **kwargs: Any
    ) -> None:
        from ..hooks.conditions import BlobCondition  # not at parse time: see triggers/base.py

        super().__init__(BlobCondition(model, version, devices, load_check), **kwargs)
