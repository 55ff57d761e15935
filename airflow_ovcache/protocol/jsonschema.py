"""Write (or check) ``cli/agent-schema.json`` from the protocol's shapes.

``python -m airflow_ovcache.protocol.jsonschema`` rewrites the file;
``--check`` exits 1 if the committed file differs (the test suite does the same).
"""

from __future__ import annotations

import json
from pathlib import Path

from .generated import write_or_check
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
    return write_or_check(SCHEMA_FILE, render(), "airflow_ovcache.protocol.jsonschema", argv)


if __name__ == "__main__":
    raise SystemExit(main())
