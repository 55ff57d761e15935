"""Trigger: a model version appeared in a host's model repository."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import OvcachePollTrigger

if TYPE_CHECKING:
    from ..hooks.conditions import ModelVersionCondition  # noqa: F401 - named in the quoted base below


class OvcacheModelVersionTrigger(OvcachePollTrigger["ModelVersionCondition"]):
    """
    Fire when ``model`` has ``version`` (or a version newer than ``newer_than``, or any version).

    :param model: the model's folder name in the repository.
    :param version: wait for exactly this version.
    :param newer_than: wait for a version above this one (not together with ``version``).
    :param repository: repository root on the host; default the connection's.

    :param kwargs: the arguments of :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger`.
    """

    def __init__(
        self,
        *,
        model: str,
        version: int | None = None,
        newer_than: int | None = None,
        repository: str | None = None,
        **kwargs: Any,
    ) -> None:
        from ..hooks.conditions import ModelVersionCondition  # not at parse time: see triggers/base.py

        super().__init__(ModelVersionCondition(model, version, newer_than, repository), **kwargs)
