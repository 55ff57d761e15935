"""What operators and sensors take from the hook's configuration when a DAG file is parsed.

The default connection id and how a list argument is split, in a module of their own: the
connection reader (:mod:`.config`) imports the profile rules, the error types and the location
they need, which only a running task uses, and a DAG processor pays every import on every parse.
"""

from __future__ import annotations

from typing import Any

# The connection a task uses when it names none.
DEFAULT_CONN_ID = "ovcache_default"


def split_list(value: Any) -> tuple[str, ...]:
    """``"CPU, GPU"``, ``["CPU", "GPU"]`` or ``None`` as a tuple of names.

    :param value: a comma- (or semicolon-) separated string, a sequence of names, or ``None``.
    """
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())
    return tuple(str(part).strip() for part in value if str(part).strip())
