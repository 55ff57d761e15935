"""The agent's JSON envelope: one versioned shape for every command.

The Airflow side parses this and nothing else, so it is versioned: a consumer
checks ``schema`` and ``schema_version`` before reading ``result``. Additive
changes (new keys) keep the version; anything that removes or changes the
meaning of a key bumps it. Version 2 adds evidence from the server's side
(``evidence`` per verify and status entry, ``server_compiled`` orphans) and
rewords load-check reasons to say what they prove (a compile following a
profile, not the server). The words and shapes are
:mod:`airflow_ovcache.protocol`'s, which writes ``airflow_ovcache/cli/agent-schema.json``
and the tables of docs/agent-json.md.
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
from ..protocol import SCHEMA, SCHEMA_VERSION, ExitCode


@dataclass
class Envelope:
    """One command's envelope, filled in as it runs and printed once with ``--json``.

    :param command: the subcommand (or ``ovcache`` when none was recognised).
    :param started: when the command started (ISO 8601, UTC).
    :param t0: ``perf_counter`` at the start, for ``seconds``.
    :param result: the command's result (its shape is in :mod:`airflow_ovcache.protocol.shapes`).
    :param error: the error that stopped the command, if one did.
    :param exit_code: what the command exits with.
    """

    command: str
    started: str = field(default_factory=utcnow)
    t0: float = field(default_factory=time.perf_counter)
    result: dict[str, Any] = field(default_factory=dict)
    error: OvcacheError | None = None
    exit_code: int = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        """The envelope as the JSON document the Airflow hook reads."""
        return {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "agent_version": __version__,
            "command": self.command,
            "host": this_host(),
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": self.exit_code,
            "started": self.started,
            "seconds": round(time.perf_counter() - self.t0, 4),
            "result": self.result,
            "error": self.error.to_json() if self.error else None,
        }

    @trace.traced("cli.envelope.dumps")
    def dumps(self) -> str:
        """The envelope as the one document printed on stdout."""
        return json.dumps(self.to_json(), indent=1, default=str)
