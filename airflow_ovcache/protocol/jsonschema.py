"""Write (or check) ``cli/agent-schema.json`` from the protocol's shapes.

``python -m airflow_ovcache.protocol.jsonschema`` rewrites the file;
``--check`` exits 1 if the committed file differs (the test suite does the same).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .shapes import agent_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "cli" / "agent-schema.json"


def render() -> str:
    """The schema file's text, exactly as committed."""
    return json.dumps(agent_schema(), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema file, or with ``--check`` report whether it is current.

    :param argv: command-line arguments (default ``sys.argv[1:]``).
    :return: 0, or 1 when ``--check`` finds the file out of date.
    """
    args = sys.argv[1:] if argv is None else argv
    text = render()
    if "--check" in args:
        current = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
        if current != text:
            print(f"{SCHEMA_FILE} is out of date: run python -m airflow_ovcache.protocol.jsonschema", file=sys.stderr)
            return 1
        return 0
    SCHEMA_FILE.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
