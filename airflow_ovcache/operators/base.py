"""What the ovcache operators share: the connection, the hook, and argument coercion."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseOperator

from ..hooks.config import split_list
from ..hooks.ovcache import OvcacheHook


def is_template(value: Any) -> bool:
    """A value only known at run time: a Jinja template, an XComArg, or a mapped task group's argument."""
    if isinstance(value, str):
        return "{{" in value
    # XComArg and MappedArgument resolve at run time; checking them at parse time would reject them.
    return hasattr(value, "resolve") and hasattr(value, "iter_references")


def as_names(value: Any) -> list[str] | None:
    """A model or device list from a list, a single name, or a comma-separated string."""
    names = list(split_list(value))
    return names or None


def as_version_numbers(value: Any, minimum: int = 1) -> list[int] | None:
    """Version numbers from an int, a list, or a (rendered) string such as ``"3"`` or ``"2,3"``."""
    if value is None or value == "" or value == []:
        return None
    items: Sequence[Any] = split_list(value) if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    from ..core.values import parse_count

    numbers = []
    for item in items:
        try:
            numbers.append(parse_count(item, minimum=minimum, maximum=10**18 - 1))
        except ValueError:
            # True, 2.5 and "2x" are refused, not read as 1, 2 and an error later.
            raise ValueError(f"version {item!r} is not a version number (a whole number of at least {minimum})") from None
    return numbers


def path_map(value: Any) -> dict[str, str] | None:
    """An OVMS path map from a dict or a rendered JSON object (server path prefix to agent path prefix)."""
    if not value:
        return None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"ovms_path_map {value!r} is neither a dict nor a JSON object") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"ovms_path_map must map server paths to agent paths, not {value!r}")
    return dict(value)


def human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def check_choice(name: str, value: Any, choices: Sequence[str | None]) -> None:
    if value is None or is_template(value):
        return
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices if c is not None)
        raise ValueError(f"{name}={value!r} is not one of {allowed}")


def host_label_template(*fields: str) -> str:
    """A ``map_index_template`` naming the host (and the model and version, where the task has them).

    Mapped instances then read ``infer-02 · resnet v3`` in the UI instead of ``[1]``:
    the one a person looking for the failing host opens. Rendered from the task's own
    (rendered) fields, so it is known before the task runs and still there when it fails.
    """
    label = "{{ task.host_name or task.ovcache_conn_id }}"
    for name in fields:
        prefix = " v" if "version" in name else " · "
        label += f"{{% if task.{name} %}}{prefix}{{{{ task.{name} }}}}{{% endif %}}"
    return label


ERROR_XCOM_KEY = "ovcache_error"


def failure_record(task_id: str, exc: BaseException) -> dict[str, Any]:
    """A failure as plain data: where (from the error's target, if it has one) and why."""
    from ..core.text import one_line
    from ..hooks.errors import failure_kind

    target = getattr(exc, "target", None)
    version = getattr(target, "version", None)
    return {
        "task_id": task_id,
        "host": getattr(target, "host", None),
        "model": getattr(target, "model", None),
        # A number where it is one, as everywhere else in XCom.
        "version": int(version) if isinstance(version, str) and version.isdigit() else version,
        "device": getattr(target, "device", None),
        "error": type(exc).__name__,
        "kind": failure_kind(exc),
        "message": one_line(str(exc)),
        # The reason and what to do, without the coordinates the message starts with.
        "reason": one_line(getattr(exc, "reason", "") or str(exc)),
        "hint": one_line(getattr(exc, "hint", "") or ""),
    }


def reporting_failures(execute: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``execute``: a failure is also pushed to XCom under ``ovcache_error``, then re-raised."""

    @functools.wraps(execute)
    def wrapper(self: BaseOperator, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return execute(self, context, *args, **kwargs)
        except Exception as exc:
            ti = context.get("ti") if hasattr(context, "get") else None
            if ti is not None:
                try:
                    ti.xcom_push(key=ERROR_XCOM_KEY, value=failure_record(self.task_id, exc))
                except Exception:  # noqa: BLE001 - reporting must never mask the real failure
                    self.log.warning("could not record the failure in XCom", exc_info=True)
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

    When the task fails, the failure (host, model, version, device, message) is also
    pushed to XCom under ``ovcache_error``, so a summary task downstream can say
    which host failed and why without reading logs.
    """

    ui_color = "#cfe3f7"
    # The fields a mapped instance is labelled with besides the host (see host_label_template).
    label_fields: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "execute" in cls.__dict__:
            cls.execute = reporting_failures(cls.__dict__["execute"])  # type: ignore[method-assign]

    def __init__(
        self,
        *,
        ovcache_conn_id: str = OvcacheHook.default_conn_name,
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
        return {
            "cache_dir": self.cache_dir or None,
            "command_timeout": self.command_timeout,
            "host_name": self.host_name or None,
            "encryption_key_conn_id": self.encryption_key_conn_id or None,
        }

    @cached_property
    def hook(self) -> OvcacheHook:
        return OvcacheHook(self.ovcache_conn_id, **self.hook_overrides())

    def on_kill(self) -> None:
        # The agent runs in its own process group (or over SSH): stop it with the task.
        if "hook" in self.__dict__:
            self.hook.kill()
