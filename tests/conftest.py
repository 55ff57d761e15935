"""Shared fixtures: small real models, cache directories, and the ``ovcache`` command.

Models are real OpenVINO IR (and ONNX) files built from a seed; building one
costs a fraction of a second, so each test gets its own copy of a template.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.samples import build_ir, build_onnx

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, why: str) -> None:
    """Skip a test whose prerequisite is missing, except under CI, where that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"prerequisite missing under CI: {why}")
    pytest.skip(why)


@pytest.fixture
def s3_standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 API server stand-in with one bucket and its ``aws`` connection (see :mod:`tests.infra.s3_standin`)."""
    import importlib.util

    require(
        all(importlib.util.find_spec(m) for m in ("moto", "s3fs", "airflow.providers.amazon")),
        "the hub tests need moto, s3fs and apache-airflow-providers-amazon (the hub-tests extra: make venv)",
    )
    from tests.infra.s3_standin import s3_standin as start

    with start() as server:
        monkeypatch.setenv(*server.env)
        yield server


@pytest.fixture(scope="session")
def model_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("templates")
    build_ir(root / "ir" / "1" / "model.xml", size_mb=2.0, seed=1)
    build_ir(root / "ir" / "2" / "model.xml", size_mb=2.0, seed=2)
    build_ir(root / "ir" / "3" / "model.xml", size_mb=2.0, seed=3)
    build_onnx(root / "onnx" / "1" / "model.onnx", width=64, seed=4)
    return root


@pytest.fixture
def repo(tmp_path: Path, model_templates: Path) -> Path:
    """A repository with model ``mlp`` (IR, versions 1 and 2) and ``tiny`` (ONNX, version 1)."""
    root = tmp_path / "models"
    shutil.copytree(model_templates / "ir" / "1", root / "mlp" / "1")
    shutil.copytree(model_templates / "ir" / "2", root / "mlp" / "2")
    shutil.copytree(model_templates / "onnx" / "1", root / "tiny" / "1")
    return root


@pytest.fixture
def add_version(model_templates: Path):  # type: ignore[no-untyped-def]
    def add(repo_root: Path, model: str, version: int, template: str = "ir/3") -> Path:
        target = repo_root / model / str(version)
        shutil.copytree(model_templates / template, target)
        return target

    return add


@pytest.fixture(scope="session")
def second_python() -> Path:
    """The interpreter of an environment with another OpenVINO release (``tests/infra/runtime.py``), built once and kept."""
    from tests.infra.runtime import SECOND_OPENVINO, RuntimeUnavailable, runtime_python

    try:
        return runtime_python()
    except RuntimeUnavailable as exc:
        require(False, f"a second OpenVINO runtime ({SECOND_OPENVINO}) could not be installed: {exc}")
        raise


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.stdout)


def ovcache(*args: str, env: dict[str, str] | None = None, user: str | None = None, timeout: float = 300) -> Run:
    """Run the real ``ovcache`` command in a child process."""
    cmd = [sys.executable, "-m", "airflow_ovcache.cli.main", *args]
    full_env = {**os.environ, **(env or {})}
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def usable_by_others() -> Iterator[None]:
    """Let another user run this Python: grant traverse (o+x, not listing) on the folders above it.

    The interpreter may live under /root (pyenv), which is 0700; running the agent as
    ``nobody`` needs to reach it. Modes are restored afterwards.
    """
    paths = {Path(os.path.realpath(sys.executable)), Path(sys.prefix), Path(__file__).resolve().parent.parent}
    changed: list[tuple[Path, int]] = []
    try:
        for path in paths:
            for folder in [*reversed(path.parents), path]:
                if not folder.is_dir():
                    continue
                mode = folder.stat().st_mode
                if not mode & 0o001:
                    changed.append((folder, mode))
                    os.chmod(folder, mode | 0o001)
        yield
    finally:
        for folder, mode in reversed(changed):
            os.chmod(folder, mode & 0o7777)


def readable_copy(src: Path) -> Path:
    """A copy of a model repository that another user (``nobody``) may read, in a folder it may traverse.

    pytest's own temporary folders are private to root; tests that run the agent
    as another user need their models somewhere that user can reach.
    """
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="ovcache-shared-"))
    os.chmod(base, 0o755)
    dst = base / "models"
    shutil.copytree(src, dst)
    for dirpath, dirnames, filenames in os.walk(base):
        for d in dirnames:
            os.chmod(os.path.join(dirpath, d), 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)
    return dst


@pytest.fixture
def run_ovcache():  # type: ignore[no-untyped-def]
    return ovcache


def blobs_in(cache: Path) -> list[Path]:
    return sorted(p for p in cache.iterdir() if p.suffix == ".blob")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """End a run that skipped tests with one line: which tiers, and the one command that installs what they need."""
    import re

    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    tiers = sorted(
        {str(getattr(r, "nodeid", "")).split("/")[1] for r in skipped if str(getattr(r, "nodeid", "")).count("/") >= 2}
    )
    reasons = " ".join(str(r.longrepr[2]) if isinstance(r.longrepr, tuple) else str(r.longrepr) for r in skipped)
    packages = sorted(set(re.findall(r"apt-get install (?:-y )?([a-z0-9.+-]+)", reasons)))
    command = f"sudo apt-get install -y {' '.join(packages)}" if packages else "sudo bash .ci/run"
    if "root" in reasons:
        command += " (and run the tests as root)"
    terminalreporter.write_line(
        f"skipped {len(skipped)} test(s) in tier(s) {', '.join(tiers) or '?'}: install their prerequisites with: {command}"
    )
