"""``ovcache devices``: devices, their capabilities and whether they can cache."""

from __future__ import annotations

import argparse
from typing import Any

from ...protocol import ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Describe the devices asked for (default every device) in ``env.result``.

    :param args: the parsed ``devices`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if a device cannot cache, else :attr:`ExitCode.OK`.
    """
    env.result, code = devices_result(args.devices)
    if not args.json:
        from ..render import devices_table

        devices_table(env.result["devices"])
    return code


def devices_result(names: list[str] | None) -> tuple[dict[str, Any], ExitCode]:
    """The devices' descriptions and exit code (shared by ``devices`` and the devices step of ``release``).

    :param names: the devices to describe; None or empty for every device.
    :return: the result (shape ``devices``) and :attr:`ExitCode.PROBLEMS` if a device cannot cache, else :attr:`ExitCode.OK`.
    """
    import openvino as ov

    from ...core import devices as dev
    from ...core.hostfacts import host_summary, runtime_build

    core = ov.Core()
    infos = [dev.describe(name, core) for name in names] if names else dev.describe_all(core)
    result = {"runtime": runtime_build(), "host": host_summary(), "devices": [i.to_json() for i in infos]}
    return result, ExitCode.OK if all(i.can_cache for i in infos) else ExitCode.PROBLEMS
