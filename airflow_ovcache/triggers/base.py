"""The polling loop the ovcache sensor triggers share.

A trigger polls its condition through the hook's async methods (the agent
runs as an asyncio subprocess, or over SSH in a worker thread) every
``poke_interval`` seconds and yields exactly one event:

``{"status": "success", "message": ..., "value": {...}}``
    the condition is met; ``value`` is what the sensor returns for XCom;
``{"status": "timeout", "message": ...}``
    ``timeout`` seconds passed; the message says what was still missing;
``{"status": "error", "message": ...}``
    the host or its agent failed in a way waiting will not fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from ..hooks.errors import OvcacheHookError

if TYPE_CHECKING:
    # A sensor module imports its trigger when a DAG file is parsed; the conditions and the hook are
    # needed only once a trigger is made (by a deferring sensor, or in the triggerer).
    from ..hooks.conditions import Condition
    from ..hooks.ovcache import OvcacheHook

ConditionT = TypeVar("ConditionT", bound="Condition[Any]")


def poke_interval_seconds(poke_interval: float) -> float:
    """A trigger's ``poke_interval`` as float seconds, refusing a negative one (the loop would spin).

    :param poke_interval: seconds between two polls.
    """
    if poke_interval < 0:
        raise ValueError("poke_interval must not be negative")
    return float(poke_interval)


class OvcachePollTrigger(BaseTrigger, Generic[ConditionT]):
    """
    Base of the ovcache sensor triggers: poll one condition until it is met, fails, or time is up.

    A subclass only builds its condition from its own arguments; ``serialize()``
    gives this class's arguments and the condition's fields, which are named as
    the subclass's arguments, so the trigger round-trips.

    :param condition: what to wait for; its fields are serialized with the trigger.
    :param ovcache_conn_id: the ``ovcache`` connection of the host.
    :param poke_interval: seconds between two polls.
    :param timeout: seconds after which to give up with a ``timeout`` event; ``None`` waits forever.
    :param cache_dir: overrides the connection's cache directory.
    :param command_timeout: seconds one agent command may run.
    :param host_name: the name the host is reported by (overrides the connection's).
    """

    def __init__(
        self,
        condition: ConditionT,
        *,
        ovcache_conn_id: str,
        poke_interval: float = 30.0,
        timeout: float | None = None,
        cache_dir: str | None = None,
        command_timeout: float | None = None,
        host_name: str | None = None,
    ) -> None:
        super().__init__()
        self.condition = condition
        self.ovcache_conn_id = ovcache_conn_id
        self.poke_interval = poke_interval_seconds(poke_interval)
        self.timeout = None if timeout is None else float(timeout)
        self.cache_dir = cache_dir
        self.command_timeout = command_timeout
        self.host_name = host_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The class path and the keyword arguments that rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "ovcache_conn_id": self.ovcache_conn_id,
                "poke_interval": self.poke_interval,
                "timeout": self.timeout,
                "cache_dir": self.cache_dir,
                "command_timeout": self.command_timeout,
                "host_name": self.host_name,
                **self.condition.arguments(),
            },
        )

    def make_hook(self) -> OvcacheHook:
        """The hook the polls go through, with this trigger's overrides of the connection."""
        from ..hooks.ovcache import OvcacheHook

        return OvcacheHook(
            self.ovcache_conn_id, cache_dir=self.cache_dir, command_timeout=self.command_timeout, host_name=self.host_name
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll every ``poke_interval`` seconds and yield one event: success, timeout or error (see the module)."""
        hook = self.make_hook()
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        polls = 0
        while True:
            polls += 1
            try:
                check = await self.condition.apoll(hook)
            except OvcacheHookError as exc:
                yield TriggerEvent({"status": "error", "message": str(exc)})
                return
            except Exception as exc:  # noqa: BLE001 - becomes a task failure with the reason, not a dead trigger
                yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
                return
            if check.met:
                self.log.info("%s (after %d poll(s))", check.message, polls)
                yield TriggerEvent({"status": "success", "message": check.message, "value": check.value})
                return
            self.log.info("%s", check.message)
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"still not met after {self.timeout:g}s ({polls} poll(s)): {check.message}",
                        }
                    )
                    return
                await asyncio.sleep(min(self.poke_interval, remaining))
            else:
                await asyncio.sleep(self.poke_interval)
