"""Sensor: a model version has appeared in a host's model repository."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..operators.arguments import is_template
from .base import OvcacheBaseSensor, one_version

if TYPE_CHECKING:
    from ..hooks.conditions import ModelVersionCondition


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

    :param kwargs: the arguments of :class:`~airflow_ovcache.sensors.base.OvcacheBaseSensor`
        (here ``cache_dir`` is not templated: this sensor does not read the cache).
    """

    label_fields = ("model", "version")
    trigger_path = "airflow_ovcache.triggers.model_version:OvcacheModelVersionTrigger"
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
        # "newer than 0" is the way to say "any version at all".
        for name, value, minimum in (("version", version, 1), ("newer_than", newer_than, 0)):
            if not is_template(value):
                one_version(name, value, minimum=minimum)
        self.model = model
        self.version = version
        self.newer_than = newer_than
        self.repository = repository

    def condition(self) -> ModelVersionCondition:
        """The rendered version (or a version above the rendered ``newer_than``) of the model, in the repository."""
        from ..hooks.conditions import ModelVersionCondition  # when the sensor pokes, not at parse time

        return ModelVersionCondition(
            self.model,
            one_version("version", self.version),
            one_version("newer_than", self.newer_than, minimum=0),
            self.repository or None,
        )
