"""Read a settings file people write: TOML by default, JSON by its suffix.

One reader for the serving config and the fleet inventory, so both fail the
same way: one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import UsageError


def load_table(path: str | Path, what: str, hint: str = "") -> dict[str, Any]:
    """The file's top-level table; raises :class:`UsageError` if it cannot be read, parsed, or is not a table.

    :param path: the file; a ``.json`` suffix reads JSON, anything else TOML.
    :param what: names the file in errors ("serving config", "fleet inventory").
    :param hint: what to do, added to the error when the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}", hint=hint) from None
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} {path} does not parse: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{what} {path} must be a table (an object)")
    return data
