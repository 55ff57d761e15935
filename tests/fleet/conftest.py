"""Fleet-tier fixtures: namespaced hosts with sshds, reached through the real provider hook.

Importing the provider conftest points ``AIRFLOW_HOME`` at a temporary SQLite
home before anything imports Airflow (it does that at import time, once per
session, whichever test directory is collected first).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require
from tests.infra.fleet import Fleet
from tests.infra.sshd import find_sshd
from tests.provider.conftest import airflow_db

__all__ = ["airflow_db", "make_fleet", "require_fleet"]


def require_fleet() -> None:
    """Skip without root, iproute2 or sshd; under CI=true that is a failure."""
    require(os.geteuid() == 0 and shutil.which("ip") is not None, "fleet tests need root and iproute2 (network namespaces)")
    require(find_sshd() is not None, "fleet tests need sshd (apt-get install -y openssh-server)")


@pytest.fixture
def make_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Fleet]]:
    """``make_fleet(3)``: a started fleet whose ovcache and SSH connections are in this test's environment.

    Keyword arguments go to :class:`~tests.infra.fleet.Fleet`. Every fleet is torn
    down after the test, and a teardown that leaves something behind fails it.
    """
    fleets: list[Fleet] = []

    def make(n: int, **kwargs: Any) -> Fleet:
        require_fleet()
        fleet = Fleet(n, tmp_path / f"fleet{len(fleets) + 1}", **kwargs)
        fleets.append(fleet)
        fleet.start()
        for name, value in fleet.airflow_env().items():
            monkeypatch.setenv(name, value)
        return fleet

    yield make
    problems = [problem for fleet in reversed(fleets) for problem in fleet.stop(raise_errors=False)]
    assert not problems, f"fleet teardown: {'; '.join(problems)}"
