"""What the ovcache operators share: the connection, the hook, the task label, and failure reporting.

Argument coercion is in :mod:`.arguments`; the failure record's shape and kinds are in
:mod:`airflow_ovcache.outcomes`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from ..hooks.defaults import DEFAULT_CONN_ID
from ..outcomes import ERROR_XCOM_KEY, failure_record

if TYPE_CHECKING:
    # The hook (and its commands and report readers) is imported where a task runs, not when a DAG
    # file is parsed: every DAG that uses an ovcache operator imports this module.
    from ..hooks.ovcache import OvcacheHook


def host_label_template(*fields: str) -> str:
    """A ``map_index_template`` naming the host (and the model and version, where the task has them).

    Mapped instances then read ``infer-02 · resnet v3`` in the UI instead of ``[1]``:
    the one a person looking for the failing host opens. Rendered from the task's own
    (rendered) fields, so it is known before the task runs and still there when it fails.

    :param fields: the task's attributes to add after the host, in order; one whose name
        says ``version`` is written ``v<n>``.
    """
    label = "{{ task.host_name or task.ovcache_conn_id }}"
    for name in fields:
        prefix = " v" if "version" in name else " · "
        label += f"{{% if task.{name} %}}{prefix}{{{{ task.{name} }}}}{{% endif %}}"
    return label


def push_failure(ti: Any, task_id: str, exc: BaseException, log: Any) -> None:
    """Leave ``exc`` in XCom as a failure record (see :mod:`airflow_ovcache.outcomes`); never raise.

    :param ti: the running task instance (whatever has ``xcom_push``).
    :param task_id: the task, or the step of a ``@task``, the record names.
    :param exc: the exception the task is failing with.
    :param log: where to say so if the record cannot be pushed.
    """
    from ..hooks.errors import failure_kind

    try:
        ti.xcom_push(key=ERROR_XCOM_KEY, value=failure_record(task_id, exc, failure_kind(exc)))
    except Exception:  # noqa: BLE001 - reporting must never mask the real failure
        log.warning("could not record the failure in XCom", exc_info=True)


def reporting_failures(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate an ``execute`` (or ``execute_complete``): a failure is also left in XCom, then re-raised.

    Every ovcache operator and sensor applies it to its own ``execute``, so a summary
    task downstream can say which host failed and why without reading logs.

    :param execute: the method to wrap; it takes the task's context as its first argument.
    """

    @functools.wraps(execute)
    def wrapper(self: BaseOperator, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, context, *args, **kwargs)
        except Exception as exc:
            ti = context.get("ti") if hasattr(context, "get") else None
            if ti is not None:
                push_failure(ti, self.task_id, exc, self.log)
            raise

    return wrapper


class OvcacheBaseOperator(BaseOperator):
    """
    Base of the ovcache operators: one target host, reached through an ``ovcache`` connection.

    :param ovcache_conn_id: the ``ovcache`` connection of the target host. (templated)
    :param cache_dir: OpenVINO ``cache_dir`` on the host; defaults to the connection's. (templated)
    :param command_timeout: seconds the agent may run before it is stopped; defaults to the
        connection's (3600).
    :param host_name: the name the host is reported by (overrides the connection's ``host``),
        e.g. its name in the fleet inventory. (templated)
    :param encryption_key_conn_id: a connection whose password is the cache encryption key
        (64 hex characters); overrides the host connection's ``encryption_key_conn_id``. The key
        reaches the agent on its standard input, never in a command line, log or XCom.
    :param kwargs: to Airflow's BaseOperator (``task_id``, ``retries``, ...); ``map_index_template`` defaults to naming the host.

    When the task fails, the failure (host, model, version, device, message) is also
    pushed to XCom under ``ovcache_error``, so a summary task downstream can say
    which host failed and why without reading logs: each subclass decorates its
    ``execute`` with :func:`reporting_failures`.
    """

    ui_color = "#cfe3f7"
    # The fields a mapped instance is labelled with besides the host (see host_label_template).
    label_fields: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        ovcache_conn_id: str = DEFAULT_CONN_ID,
        cache_dir: str | None = None,
        command_timeout: float | None = None,
        host_name: str | None = None,
        encryption_key_conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("map_index_template", host_label_template(*self.label_fields))
        super().__init__(**kwargs)
        if command_timeout is not None and command_timeout <= 0:
            raise ValueError("command_timeout must be a positive number of seconds")
        self.ovcache_conn_id = ovcache_conn_id
        self.host_name = host_name
        self.encryption_key_conn_id = encryption_key_conn_id
        self.cache_dir = cache_dir
        self.command_timeout = command_timeout

    def hook_overrides(self) -> dict[str, Any]:
        """The connection settings this task overrides, as :class:`OvcacheHook` keyword arguments."""
        return {
            "cache_dir": self.cache_dir or None,
            "command_timeout": self.command_timeout,
            "host_name": self.host_name or None,
            "encryption_key_conn_id": self.encryption_key_conn_id or None,
        }

    @cached_property
    def hook(self) -> OvcacheHook:
        """The hook of the target host, made on first use (never when the DAG is parsed)."""
        from ..hooks.ovcache import OvcacheHook

        return OvcacheHook(self.ovcache_conn_id, **self.hook_overrides())

    def on_kill(self) -> None:
        """Stop the agent with the task."""
        # The agent runs in its own process group (or over SSH): stop it with the task.
        if "hook" in self.__dict__:
            self.hook.kill()
