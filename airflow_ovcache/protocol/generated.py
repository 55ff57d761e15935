"""Write a generated file, or check that the committed one is current: what both generators share."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(path: Path, text: str, module: str, argv: list[str] | None = None) -> int:
    """Write ``text`` to ``path``, or with ``--check`` in ``argv`` only say whether it is already there.

    The JSON Schema and the tables of docs/agent-json.md are generated from the
    protocol; a test runs the check so that a protocol change cannot land
    without the files that describe it.

    :param path: the generated file.
    :param text: what it should hold.
    :param module: the generator's module, named in the out-of-date message.
    :param argv: command-line arguments (default ``sys.argv[1:]``).
    :return: 0, or 1 when ``--check`` finds the file out of date.
    """
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run python -m {module}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    return 0
