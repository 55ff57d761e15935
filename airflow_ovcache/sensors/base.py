"""What the ovcache sensors share: poke through the hook, or defer to a trigger."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from ..hooks.defaults import DEFAULT_CONN_ID
from ..operators.arguments import as_names, as_version_numbers, is_template
from ..operators.base import reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The hook is imported where the sensor pokes, not when a DAG file is parsed (see operators/base.py).
    from ..hooks.conditions import Condition
    from ..hooks.ovcache import OvcacheHook
    from ..triggers.base import OvcachePollTrigger

# The trigger enforces the sensor's timeout itself (and says what was still
# missing); the deferral timeout is a backstop a little later.
DEFER_SLACK = 60.0


def one_version(name: str, value: Any, *, minimum: int = 1) -> int | None:
    """The single version number in a sensor argument (an int or a rendered string), or None if it is empty.

    :param name: the argument's name, for the error message.
    :param value: the argument's (rendered) value.
    :param minimum: the smallest version number accepted (``newer_than`` accepts 0).
    """
    numbers = as_version_numbers(value, minimum=minimum)
    if numbers is None:
        return None
    if len(numbers) != 1:
        raise ValueError(f"{name}={value!r} must be one version number")
    return numbers[0]


def _required_version(value: Any) -> int:
    number = one_version("version", value)
    if number is None:
        raise ValueError(f"version={value!r} must be one version number")
    return number


class OvcacheBaseSensor(BaseSensorOperator):
    """
    Base of the ovcache sensors.

    In poke (or reschedule) mode each poke runs one agent command on the host.
    With ``deferrable=True`` (default: ``[operators] default_deferrable``) the
    sensor checks once on the worker, then frees the worker slot and waits in
    the triggerer. Either way it returns the condition's details for XCom.

    A subclass names its trigger class and builds its condition
    (:meth:`condition`); the trigger is built from the condition's fields.

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param cache_dir: overrides the connection's cache directory. (templated)
    :param command_timeout: seconds one agent command may run.
    :param host_name: the name the host is reported by, e.g. its fleet inventory name. (templated)
    :param deferrable: wait in the triggerer instead of occupying a worker slot.
    :param kwargs: the arguments of Airflow's ``BaseSensorOperator`` (``poke_interval``,
        ``timeout``, ``mode``, ``soft_fail``, ``exponential_backoff``...).
    """

    template_fields: Sequence[str] = ("ovcache_conn_id", "cache_dir", "host_name")
    ui_color = "#e0f0e6"
    # The fields a mapped instance is labelled with besides the host (see host_label_template).
    label_fields: tuple[str, ...] = ()
    # The trigger that waits for the same condition in the triggerer, as "module:Class": imported only
    # when the sensor defers, since the triggers import Airflow's trigger machinery (about 10 ms),
    # which a DAG processor would otherwise pay on every parse of a file that uses a sensor.
    trigger_path: ClassVar[str]

    def __init__(
        self,
        *,
        ovcache_conn_id: str = DEFAULT_CONN_ID,
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
        """The hook of the host, with this sensor's overrides of the connection."""
        from ..hooks.ovcache import OvcacheHook

        return OvcacheHook(
            self.ovcache_conn_id,
            cache_dir=self.cache_dir or None,
            command_timeout=self.command_timeout,
            host_name=self.host_name or None,
        )

    # -- for subclasses -----------------------------------------------------------------------
    def condition(self) -> Condition[Any]:
        """What this sensor waits for, from its (rendered) arguments."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------
    @classmethod
    def trigger_class(cls) -> type[OvcachePollTrigger[Any]]:
        """The trigger class :attr:`trigger_path` names, imported now."""
        import importlib

        module, _, name = cls.trigger_path.partition(":")
        found: type[OvcachePollTrigger[Any]] = getattr(importlib.import_module(module), name)
        return found

    def trigger(self) -> OvcachePollTrigger[Any]:
        """The trigger that waits for :meth:`condition` in the triggerer, with this sensor's interval and timeout."""
        return self.trigger_class()(
            **self.condition().arguments(),
            ovcache_conn_id=self.ovcache_conn_id,
            poke_interval=self.poke_interval,
            timeout=self.timeout,
            cache_dir=self.cache_dir or None,
            command_timeout=self.command_timeout,
            host_name=self.host_name or None,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Ask the host once; done with the condition's details for XCom, or False to poke again.

        :param context: the task's context (not used: the arguments are rendered already).
        """
        result = self.condition().poll(self.hook)
        self.log.info("%s", result.message)
        return PokeReturnValue(is_done=True, xcom_value=result.value) if result.met else False

    @reporting_failures
    def execute(self, context: Context) -> Any:
        """Poke as usual; when deferrable, check once here and then wait in the triggerer.

        :param context: the task's context.
        """
        if not self.deferrable:
            return super().execute(context)
        first = self.condition().poll(self.hook)
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
        """Turn the trigger's event into the sensor's result, or a clear failure.

        :param context: the task's context.
        :param event: the trigger's event payload (``status``, ``message``, ``value``).
        """
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
        """Stop the agent command still running (its process group, or the remote agent over SSH)."""
        if "hook" in self.__dict__:
            self.hook.kill()


class OvcacheEntrySensor(OvcacheBaseSensor):
    """
    Base of the sensors that wait on the verified blobs of one ``model`` at ``version``, device by device.

    :param model: the model. (templated)
    :param version: the version number. (templated)
    :param devices: devices that must all be ready; default any device. (templated)

    :param kwargs: the arguments of :class:`OvcacheBaseSensor`.
    """

    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "cache_dir", "model", "version", "devices")

    def __init__(self, *, model: str, version: int | str, devices: Sequence[str] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not model:
            raise ValueError("model is required")
        if not is_template(version):
            _required_version(version)
        self.model = model
        self.version = version
        self.devices = devices

    def version_number(self) -> int:
        """The rendered ``version`` as a number."""
        return _required_version(self.version)

    def device_names(self) -> list[str] | None:
        """The rendered ``devices`` as a list, or None for any device."""
        return as_names(self.devices)
