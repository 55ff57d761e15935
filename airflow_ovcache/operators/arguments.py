"""Coercion and checks of the arguments the ovcache operators and sensors take.

A DAG author writes a model list as a list, one name or ``"a,b"``, and a version
as ``3``, ``"3"`` or a template rendered at run time; these read each form into
one value, and refuse a bad one when the DAG is parsed where it is already known
(a template is checked once rendered).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..hooks.defaults import split_list


def is_template(value: Any) -> bool:
    """A value only known at run time: a Jinja template, an XComArg, or a mapped task group's argument.

    :param value: an operator argument as the DAG file passed it.
    """
    if isinstance(value, str):
        return "{{" in value
    # XComArg and MappedArgument resolve at run time; checking them at parse time would reject them.
    return hasattr(value, "resolve") and hasattr(value, "iter_references")


def as_names(value: Any) -> list[str] | None:
    """A model or device list from a list, a single name, or a comma-separated string; None when empty.

    :param value: a list or tuple of names, one name, ``"a,b"``, or None.
    """
    names = list(split_list(value))
    return names or None


def as_version_numbers(value: Any, minimum: int = 1) -> list[int] | None:
    """Version numbers from an int, a list, or a (rendered) string such as ``"3"`` or ``"2,3"``; None when empty.

    :param value: an int, a list or tuple of ints or digit strings, ``"3"``, ``"2,3"``, or None.
    :param minimum: the smallest version accepted (0 where version 0 means something).
    :raises ValueError: an item is not a whole number of at least ``minimum``.
    """
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


def json_object(value: Any, name: str) -> dict[str, Any] | None:
    """A dict argument that may also arrive as JSON text (a rendered template); None when empty.

    Templated operator arguments render to strings, so a dict given through
    Jinja or a DAG param reaches ``execute`` as its JSON text.

    :param value: a dict, its JSON text, or an empty value.
    :param name: the argument's name, for the error message.
    :raises ValueError: the value is neither a dict nor a JSON object.
    """
    if not value:
        return None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"{name} {value!r} is neither a dict nor a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict or a JSON object, not {type(value).__name__}")
    return value


def path_map(value: Any) -> dict[str, str] | None:
    """An OVMS path map from a dict or a rendered JSON object (server path prefix to agent path prefix).

    :param value: a dict of strings, its JSON text, or an empty value (None is returned).
    :raises ValueError: the value is neither, or maps something other than strings.
    """
    mapping = json_object(value, "ovms_path_map")
    if mapping is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise ValueError(f"ovms_path_map must map server paths to agent paths, not {value!r}")
    return mapping


def as_flag(value: Any, name: str) -> bool:
    """A yes/no argument that may arrive rendered from a template or an XCom: a bool, or ``true``/``false`` text.

    :param value: the argument as rendered.
    :param name: the argument's name, for the error.
    :raises ValueError: anything else, naming the argument.
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "", "none"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def check_choice(name: str, value: Any, choices: Sequence[str | None]) -> None:
    """Refuse ``value`` when it is known now and is not one of ``choices`` (None and templates pass).

    :param name: the argument's name, for the message.
    :param value: the argument as passed.
    :param choices: the allowed values; a None among them only means the argument may be left out.
    :raises ValueError: naming the argument and the allowed values.
    """
    if value is None or is_template(value):
        return
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices if c is not None)
        raise ValueError(f"{name}={value!r} is not one of {allowed}")
