"""Strict readers for the values people type: sizes, durations, counts, names, lists, flags.

Every parser of user input (command-line flags, serving configs, the fleet
inventory, connection extras, DAG params) reads its values through these, so a
wrong type is refused the same way everywhere instead of being coerced into
something nobody meant: ``"12"`` is not the list ``[1, 2]``, ``True`` is not the
number 1, ``"inf"`` is not a size and ``nan`` is not a timeout. Each failure is
one :class:`ValueError` sentence naming what was expected; callers wrap it in
the error type of where the value came from (a flag, an inventory key, a
connection field) so the message says what to change there.

Standard library only, imported on every agent run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# Larger than any disk, and still an int64 everywhere the number travels (JSON, SQLite, OpenVINO).
MAX_BYTES = 1 << 62
# A day and a year: longer than any lock wait or timeout that means anything.
MAX_SECONDS = 366 * 24 * 3600.0

SIZE_UNITS = {
    "": 1,
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GIB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
    "TIB": 1 << 40,
}


def is_int(value: Any) -> bool:
    """An int and not a bool (``True`` is an ``int`` to Python, never a count to a person).

    :param value: any value read from user input.
    """
    return isinstance(value, int) and not isinstance(value, bool)


def parse_size(value: Any) -> int:
    """Bytes from ``20G``, ``512MiB``, ``1.5T`` or a whole number; refuses negatives, inf, nan and absurd sizes.

    Units are binary (``G`` and ``GB`` both mean 2**30) and case-insensitive.

    :param value: an int, or text with an optional unit.
    """
    if is_int(value):
        number, unit = float(value), ""
    elif isinstance(value, str):
        raw = value.strip().upper().replace(" ", "")
        digits = raw.rstrip("KMGTIB")
        unit = raw[len(digits) :]
        if not digits or not all(c.isdigit() or c == "." for c in digits) or digits.count(".") > 1 or digits == ".":
            raise ValueError(f"{value!r} is not a size (for example 20G or 512MiB)")
        number = float(digits)
    else:
        raise ValueError(f"{value!r} is not a size (for example 20G or 512MiB)")
    if unit not in SIZE_UNITS:
        raise ValueError(f"{value!r} is not a size: unknown unit {unit!r} (use B, K, M, G or T)")
    size = number * SIZE_UNITS[unit]
    if not math.isfinite(size) or size < 0 or size > MAX_BYTES:
        raise ValueError(f"{value!r} is not a size between 0 and {MAX_BYTES >> 60} EiB")
    return int(size)


def parse_seconds(value: Any, *, minimum: float = 0.0, allow_zero: bool = True, maximum: float = MAX_SECONDS) -> float:
    """A duration in seconds: a finite number (or its text) within bounds; never a bool, inf or nan.

    :param value: a number or its text.
    :param minimum: the smallest accepted value.
    :param allow_zero: whether exactly 0 is accepted (a timeout of 0 usually means nothing sensible).
    :param maximum: the largest accepted value (a year by default, which catches milliseconds given as seconds).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not a number of seconds")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number of seconds")
    if number < minimum or (number == 0 and not allow_zero):
        lower = f"more than {minimum:g}" if not allow_zero and minimum == 0 else f"at least {minimum:g}"
        raise ValueError(f"{value!r} seconds must be {lower}")
    if number > maximum:
        raise ValueError(f"{value!r} seconds is more than a year; give a number of seconds")
    return number


def parse_count(value: Any, *, minimum: int = 0, maximum: int = 1 << 31) -> int:
    """A whole number (or its digits) within bounds; ``2.5``, ``True`` and ``"2x"`` are refused, not truncated.

    :param value: an int, an integral float, or text of digits.
    :param minimum: the smallest accepted value.
    :param maximum: the largest accepted value.
    """
    if is_int(value):
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise ValueError(f"{value!r} is not a whole number")
    if number < minimum:
        raise ValueError(f"{value!r} must be at least {minimum}")
    if number > maximum:
        raise ValueError(f"{value!r} must be at most {maximum}")
    return number


def parse_flag(value: Any) -> bool:
    """A yes/no setting: a bool, or one of true/false, yes/no, on/off, 1/0; anything else is refused.

    :param value: a bool, 0/1, or one of those words (any case).
    """
    if isinstance(value, bool):
        return value
    if is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
    raise ValueError(f"{value!r} is not true or false")


def string(value: Any, what: str = "a string") -> str:
    """A string, as is; a number or a list is refused rather than turned into its repr.

    :param value: the value to check.
    :param what: what was expected, for the message ("a host name").
    """
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not {what}")
    return value


def string_list(value: Any, *, split_commas: bool = False) -> list[str]:
    """A list of strings; a single string only where a comma-separated list is documented (``split_commas``).

    A bare string is never iterated character by character: ``"eu-west"`` as a
    label list would otherwise become ``["e", "u", "-", ...]``.

    :param value: a list of non-empty strings (each stripped), or a string where ``split_commas`` allows it.
    :param split_commas: accept ``"a, b"`` as ``["a", "b"]`` (where a comma-separated form is documented).
    """
    if isinstance(value, str):
        if not split_commas:
            raise ValueError(f"{value!r} is a string; give a list, for example [{value!r}]")
        return [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise ValueError(f"{value!r} is not a list of names")
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{item!r} in {list(value)!r} is not a name")
        out.append(item.strip())
    return out


def property_value(value: Any) -> str:
    """A compile property's value as OpenVINO is given it: a string, a finite number or a bool (YES/NO).

    A list or a table is refused: OpenVINO would be handed its Python repr, and
    the blob name would hash that.

    :param value: the property's value from a spec or config.
    """
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if is_int(value):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return repr(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"{value!r} is not a property value (a string, a number or true/false)")


def version_numbers(value: Any, what: str = "versions") -> list[int]:
    """A list of positive version numbers; a string (``"12"``) is refused, not read digit by digit.

    :param value: the list to check.
    :param what: names the setting in the message ("versions", "model resnet's versions").
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ValueError(f"{what} {value!r} is not a list of version numbers (for example [1, 3])")
    out = []
    for item in value:
        if not is_int(item) or item <= 0:
            raise ValueError(f"{what} {list(value)!r}: {item!r} is not a positive whole number")
        out.append(int(item))
    return out
