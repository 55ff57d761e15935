"""A second OpenVINO runtime in an environment of its own, for a real second hardware class.

Two hosts are of one hardware class only if their OpenVINO builds match (docs/fleet.md,
"Hardware classes"); a host with another release installed is another class for real, which a
test of compile-once-per-class needs without a second machine. This builds a virtual
environment with another OpenVINO release and the agent's other runtime dependencies, and runs
the agent from this checkout's source with it (``PYTHONPATH``), so the code under test is the
checkout's and only the runtime differs.

The environment is kept between runs under ``/var/tmp/ovcache-runtimes/`` (one folder per
release, made whole or not at all: it is built under a temporary name and renamed). Usable
without pytest::

    python -m tests.infra.runtime            # builds it if missing, prints its interpreter
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

# Another release than the project's own (2026.4.1 here), with the same Python ABI wheels.
SECOND_OPENVINO = "2026.3.0"
RUNTIMES_DIR = Path("/var/tmp/ovcache-runtimes")
REPO_DIR = Path(__file__).resolve().parents[2]
# The agent's runtime dependencies besides OpenVINO (pyproject.toml's [project] dependencies).
AGENT_DEPENDENCIES = ("numpy>=1.24", "blake3>=0.4", "rich>=13")


class RuntimeUnavailable(RuntimeError):
    """The second runtime could not be built (no package index, a failed install): the message says which step."""


def runtime_python(version: str = SECOND_OPENVINO, timeout: float = 900.0) -> Path:
    """The interpreter of an environment with OpenVINO ``version``, built once and kept.

    :param version: the OpenVINO release to install.
    :param timeout: seconds the install may take.
    :raises RuntimeUnavailable: the environment could not be built (pip's last lines say why).
    """
    root = RUNTIMES_DIR / f"openvino-{version}"
    python = root / "bin" / "python"
    if (root / ".complete").exists():
        return python
    RUNTIMES_DIR.mkdir(parents=True, exist_ok=True)
    # Paths inside a venv are absolute, so it is built where it lives; ``.complete`` is written only
    # once every install finished, and a folder without it (an interrupted build) is rebuilt.
    shutil.rmtree(root, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"openvino=={version}", *AGENT_DEPENDENCIES],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeUnavailable(f"pip install openvino=={version} failed: {proc.stderr.strip()[-800:]}")
    check = subprocess.run(
        [str(python), "-c", "import openvino; print(openvino.get_version())"], capture_output=True, text=True, timeout=120
    )
    if check.returncode != 0 or version not in check.stdout:
        raise RuntimeUnavailable(f"the environment at {root} does not import OpenVINO {version}: {check.stderr[-400:]}")
    (root / ".complete").write_text(check.stdout)
    return python


def agent_command(python: Path) -> str:
    """The agent's command line with that interpreter and this checkout's source (for an ovcache connection)."""
    return f"env PYTHONPATH={shlex.quote(str(REPO_DIR))} {shlex.quote(str(python))} -m airflow_ovcache.cli.main"


if __name__ == "__main__":
    print(runtime_python())
    sys.exit(0)
