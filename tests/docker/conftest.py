"""The Docker tiers' shared state: how long each phase of the live stack took."""

from __future__ import annotations

import json
from typing import Any

# Filled by tests/docker/test_stack.py; printed at the end of the run, failed or not.
STACK_TIMINGS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if STACK_TIMINGS:
        terminalreporter.write_sep("-", "docker stack tier: seconds per phase")
        terminalreporter.write_line(json.dumps(STACK_TIMINGS))
