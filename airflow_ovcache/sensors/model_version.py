"""Sensor: a model version has appeared in a host's model repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hooks.conditions import Check, ModelVersionCondition
from ..operators.base import as_version_numbers, is_template
from ..triggers.model_version import OvcacheModelVersionTrigger
from .base import OvcacheBaseSensor


def _one_version(name: str, value: Any) -> int | None:
    numbers = as_version_numbers(value, minimum=0 if name == "newer_than" else 1)
    if numbers is None:
        return None
    if len(numbers) != 1:
        raise ValueError(f"{name}={value!r} must be one version number")
    return numbers[0]


class OvcacheModelVersionSensor(OvcacheBaseSensor):
    """
    Wait until a version of ``model`` appears in the host's model repository.

    With ``version``, wait for that version; with ``newer_than``, for any version
    above it (the usual "a new release landed" gate); with neither, for any
    version. Returns ``{"host", "repository", "model", "version", "versions"}``
    where ``version`` is the version found (the newest one that qualifies).

    :param model: the model's folder name. (templated)
    :param version: wait for exactly this version. (templated)
    :param newer_than: wait for a version above this one, e.g. the one in production. (templated)
    :param repository: repository root on the host; default the connection's. (templated)

    See :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor` for the other parameters.
    """

    label_fields = ("model", "version")
    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "model", "version", "newer_than", "repository")

    def __init__(
        self,
        *,
        model: str,
        version: int | str | None = None,
        newer_than: int | str | None = None,
        repository: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not model:
            raise ValueError("model is required")
        if version not in (None, "") and newer_than not in (None, ""):
            raise ValueError("give either version or newer_than, not both")
        for name, value in (("version", version), ("newer_than", newer_than)):
            if not is_template(value):
                _one_version(name, value)
        self.model = model
        self.version = version
        self.newer_than = newer_than
        self.repository = repository

    def _condition(self) -> ModelVersionCondition:
        return ModelVersionCondition(
            self.model,
            _one_version("version", self.version),
            _one_version("newer_than", self.newer_than),
            self.repository or None,
        )

    def check(self) -> Check:
        return self._condition().poll(self.hook)

    def trigger(self) -> OvcacheModelVersionTrigger:
        cond = self._condition()
        return OvcacheModelVersionTrigger(
            model=cond.model,
            version=cond.version,
            newer_than=cond.newer_than,
            repository=cond.repository,
            **self.trigger_common(),
        )
