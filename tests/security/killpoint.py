"""Run the ``ovcache`` agent and SIGKILL it at its N-th filesystem mutation.

    python -m tests.security.killpoint N ovcache-args...

Every call the agent makes to ``os.replace``, ``os.rename``, ``os.unlink``,
``os.link``, ``os.fsync``, ``os.chmod``, ``os.mkdir`` and ``os.rmdir`` counts
twice, once just before and once just after it; at count ``N`` the agent's
whole process group (itself and any load-check child) is killed with SIGKILL.
``N = 0`` never kills and writes the total count to ``$OVCACHE_KILLPOINT_COUNT``,
so a test can spread kill points over a whole run. This is fault injection,
not a mock: the agent, OpenVINO and the filesystem are all real; only the moment
of death is chosen.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path
from typing import Any

MUTATIONS = ("replace", "rename", "unlink", "link", "fsync", "chmod", "mkdir", "rmdir")


def install(kill_at: int) -> dict[str, int]:
    state = {"count": 0}

    def tick() -> None:
        state["count"] += 1
        if state["count"] == kill_at:
            try:
                os.killpg(os.getpgid(0), signal.SIGKILL)
            finally:
                os.kill(os.getpid(), signal.SIGKILL)

    for name in MUTATIONS:
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            tick()
            try:
                return _real(*args, **kwargs)
            finally:
                tick()

        setattr(os, name, wrapped)
    return state


def main() -> int:
    kill_at = int(sys.argv[1])
    state = install(kill_at)
    count_file = os.environ.get("OVCACHE_KILLPOINT_COUNT")
    if kill_at == 0 and count_file:
        atexit.register(lambda: Path(count_file).write_text(str(state["count"])))
    from airflow_ovcache.cli.main import main as agent

    return agent(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
