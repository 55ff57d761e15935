"""``ovcache version``: agent, schema and OpenVINO versions (what the Airflow side checks)."""

from __future__ import annotations

import argparse
import sys

from ... import __version__
from ...protocol import SCHEMA, SCHEMA_VERSION, ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Put the agent's, the schema's, OpenVINO's and Python's versions in ``env.result``.

    :param args: the parsed ``version`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.OK`.
    """
    import platform

    from ...core.hostfacts import runtime_dist_version

    env.result = {
        "agent_version": __version__,
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "openvino": runtime_dist_version(),
        "python": platform.python_version(),
        "executable": sys.executable,
    }
    if not args.json:
        print(
            f"ovcache {__version__} (schema {SCHEMA_VERSION}, openvino {env.result['openvino']}, python {env.result['python']})"
        )
    return ExitCode.OK
