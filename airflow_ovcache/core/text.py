"""Text that came from input, made safe to print on one line.

A model name, a path or an OpenVINO message can carry a newline, a carriage
return or a terminal escape sequence. Printed as is, it breaks the one-line
error an on-call person greps for, and it lets whoever names a folder forge a
log line ("...\\nINFO all hosts ok"). Everything the agent and the provider print
about a name from input goes through :func:`printable` (errors, progress lines,
tables, task logs, reports); HTML is escaped on top of it.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators and
# bidirectional overrides, which reorder or break a line when displayed.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` with every control character written as an escape (``\\n`` becomes ``\\x0a``).

    :param text: anything printed about a name from input (converted with ``str``).
    """
    return _UNSAFE.sub(_escape, str(text))


def one_line(text: object) -> str:
    """Runs of spaces and line breaks collapsed into one space, then any other control character escaped.

    For messages (an OpenVINO error spans lines); names go through :func:`printable`
    alone, so that ``"a\\nb"`` does not pass for ``"a b"``.

    :param text: a message (converted with ``str``).
    """
    return printable(" ".join(str(text).split()))


def human_bytes(size: int | None) -> str:
    """A byte count as a person reads it (``"512 B"``, ``"1.5 MiB"``); ``"-"`` when there is none.

    The one spelling of sizes in tables, task logs and the fleet report, so that a
    blob reads the same size wherever it is shown.

    :param size: a number of bytes, or None where it is not known.
    """
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
