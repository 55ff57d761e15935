"""The agent's JSON envelope: one versioned shape for every command.

The Airflow side parses this and nothing else, so it is versioned: a consumer
checks ``schema`` and ``schema_version`` before reading ``result``. Additive
changes (new keys) keep the version; anything that removes or changes the
meaning of a key bumps it. Version 2 adds evidence from the server's side
(``evidence`` per verify and status entry, ``server_compiled`` orphans) and
rewords load-check reasons to say what they prove (a compile following a
profile, not the server). The shape is written down in
``airflow_ovcache/cli/agent-schema.json`` and docs/agent-json.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..core import trace
from ..core.errors import OvcacheError, this_host
from ..core.manifest import utcnow

SCHEMA = "airflow-ovcache/agent"
SCHEMA_VERSION = 2

EXIT_OK = 0
EXIT_PROBLEMS = 1  # the command ran and found or left problems (verify found stale blobs, ...)
EXIT_ERROR = 2  # the command could not do its job (bad input, unusable cache directory, a failed warm)


@dataclass
class Envelope:
    command: str
    started: str = field(default_factory=utcnow)
    t0: float = field(default_factory=time.perf_counter)
    result: dict[str, Any] = field(default_factory=dict)
    error: OvcacheError | None = None
    exit_code: int = EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "agent_version": __version__,
            "command": self.command,
            "host": this_host(),
            "ok": self.exit_code == EXIT_OK,
            "exit_code": self.exit_code,
            "started": self.started,
            "seconds": round(time.perf_counter() - self.t0, 4),
            "result": self.result,
            "error": self.error.to_json() if self.error else None,
        }

    @trace.traced("cli.envelope.dumps")
    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, default=str)
