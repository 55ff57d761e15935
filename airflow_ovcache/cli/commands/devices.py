"""``ovcache devices``: devices, their capabilities, whether they can cache, and their hardware class."""

from __future__ import annotations

import argparse
from typing import Any

from ...protocol import ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Describe the devices asked for (default every device), each with its class key, in ``env.result``.

    With ``--cache-dir`` the CPU's instruction set is read from (and recorded in)
    that cache directory's host facts, as warm and verify do; without it a
    one-node compile probes it.

    :param args: the parsed ``devices`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if a device cannot cache, else :attr:`ExitCode.OK`.
    """
    env.result, code = devices_result(args.devices, args.cache_dir)
    if not args.json:
        from ..render import devices_table

        devices_table(env.result["devices"])
    return code


def devices_result(names: list[str] | None, cache_dir: str | None = None) -> tuple[dict[str, Any], ExitCode]:
    """The devices' descriptions and classes, and the exit code (shared by ``devices`` and the devices step of ``release``).

    :param names: the devices to describe; None or empty for every device.
    :param cache_dir: a cache directory whose host facts hold (or get) the CPU's instruction set; None to probe.
    :return: the result (shape ``devices``) and :attr:`ExitCode.PROBLEMS` if a device cannot cache, else :attr:`ExitCode.OK`.
    """
    import openvino as ov

    from ...core import devices as dev
    from ...core.hostfacts import host_summary, runtime_build

    facts = None
    if cache_dir is not None:
        from ...core.cachedir import CacheDir

        cache = CacheDir(cache_dir).check(create=False, writable=False)
        facts = cache.host_facts_path if cache.state.is_dir() else None
    core = ov.Core()
    infos = [dev.describe(name, core) for name in names] if names else dev.describe_all(core)
    infos = [dev.classify(info, core, facts) for info in infos]
    result = {"runtime": runtime_build(facts), "host": host_summary(), "devices": [i.to_json() for i in infos]}
    return result, ExitCode.OK if all(i.can_cache for i in infos) else ExitCode.PROBLEMS
