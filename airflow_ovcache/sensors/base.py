"""What the ovcache sensors share: poke through the hook, or defer to a trigger."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from ..hooks.conditions import Check
from ..hooks.ovcache import OvcacheHook
from ..operators.base import reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    from ..triggers.base import OvcachePollTrigger

# The trigger enforces the sensor's timeout itself (and says what was still
# missing); the deferral timeout is a backstop a little later.
DEFER_SLACK = 60.0


class OvcacheBaseSensor(BaseSensorOperator):
    """
    Base of the ovcache sensors.

    In poke (or reschedule) mode each poke runs one agent command on the host.
    With ``deferrable=True`` (default: ``[operators] default_deferrable``) the
    sensor checks once on the worker, then frees the worker slot and waits in
    the triggerer. Either way it returns the condition's details for XCom.

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param cache_dir: overrides the connection's cache directory. (templated)
    :param command_timeout: seconds one agent command may run.
    :param host_name: the name the host is reported by, e.g. its fleet inventory name. (templated)
    :param deferrable: wait in the triggerer instead of occupying a worker slot.
    """

    template_fields: Sequence[str] = ("ovcache_conn_id", "cache_dir", "host_name")
    ui_color = "#e0f0e6"
    # The fields a mapped instance is labelled with besides the host (see host_label_template).
    label_fields: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        ovcache_conn_id: str = OvcacheHook.default_conn_name,
        cache_dir: str | None = None,
        command_timeout: float | None = None,
        host_name: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        from ..operators.base import host_label_template

        kwargs.setdefault("map_index_template", host_label_template(*self.label_fields))
        super().__init__(**kwargs)
        self.ovcache_conn_id = ovcache_conn_id
        self.host_name = host_name
        self.cache_dir = cache_dir
        self.command_timeout = command_timeout
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> OvcacheHook:
        return OvcacheHook(
            self.ovcache_conn_id,
            cache_dir=self.cache_dir or None,
            command_timeout=self.command_timeout,
            host_name=self.host_name or None,
        )

    # -- for subclasses -----------------------------------------------------------------------
    def check(self) -> Check:
        raise NotImplementedError

    def trigger(self) -> OvcachePollTrigger:
        raise NotImplementedError

    def trigger_common(self) -> dict[str, Any]:
        return {
            "ovcache_conn_id": self.ovcache_conn_id,
            "poke_interval": self.poke_interval,
            "timeout": self.timeout,
            "cache_dir": self.cache_dir or None,
            "command_timeout": self.command_timeout,
            "host_name": self.host_name or None,
        }

    # -- shared -------------------------------------------------------------------------------
    def poke(self, context: Context) -> bool | PokeReturnValue:
        result = self.check()
        self.log.info("%s", result.message)
        return PokeReturnValue(is_done=True, xcom_value=result.value) if result.met else False

    @reporting_failures
    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.check()
        if first.met:
            self.log.info("%s", first.message)
            return first.value
        self.log.info(
            "%s; deferring to the triggerer (poll every %gs, timeout %gs)", first.message, self.poke_interval, self.timeout
        )
        self.defer(
            trigger=self.trigger(),
            method_name="execute_complete",
            timeout=datetime.timedelta(seconds=self.timeout + DEFER_SLACK),
        )

    @reporting_failures
    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Turn the trigger's event into the sensor's result, or a clear failure."""
        if not event:
            raise AirflowException(f"{self.task_id}: the trigger ended without an event")
        status = event.get("status")
        message = str(event.get("message") or "")
        if status == "success":
            self.log.info("%s", message)
            return event.get("value")
        if status == "timeout":
            raise AirflowSensorTimeout(f"{self.task_id} timed out: {message}")
        raise AirflowException(f"{self.task_id} failed: {message}")

    def on_kill(self) -> None:
        if "hook" in self.__dict__:
            self.hook.kill()
