"""Trigger: a model version appeared in a host's model repository."""

from __future__ import annotations

from typing import Any

from ..hooks.conditions import Check, ModelVersionCondition
from ..hooks.ovcache import OvcacheHook
from .base import OvcachePollTrigger


class OvcacheModelVersionTrigger(OvcachePollTrigger):
    """
    Fire when ``model`` has ``version`` (or a version newer than ``newer_than``, or any version).

    :param model: the model's folder name in the repository.
    :param version: wait for exactly this version.
    :param newer_than: wait for a version above this one.
    :param repository: repository root on the host; default the connection's.

    See :class:`~airflow_ovcache.triggers.base.OvcachePollTrigger` for the other parameters.
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
        super().__init__(**kwargs)
        ModelVersionCondition(model, version, newer_than)  # validates the combination
        self.model = model
        self.version = version
        self.newer_than = newer_than
        self.repository = repository

    def condition_kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "newer_than": self.newer_than, "repository": self.repository}

    async def check(self, hook: OvcacheHook) -> Check:
        return await ModelVersionCondition(self.model, self.version, self.newer_than, self.repository).apoll(hook)
