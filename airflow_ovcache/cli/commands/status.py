"""``ovcache status``: list managed blobs, orphans and sizes (fast: no hashing)."""

from __future__ import annotations

import argparse

from ...protocol import ExitCode
from ..output import Envelope
from .common import open_cache, take_warnings


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Put what the cache directory holds in ``env.result``.

    :param args: the parsed ``status`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if a recorded blob is missing, else :attr:`ExitCode.OK`.
    """
    from ...core.status import cache_status

    cache = open_cache(args, create=False, writable=False)
    status = cache_status(cache)
    env.result = {**status.to_json(), "warnings": take_warnings(cache)}
    if not args.json:
        from ..render import status_table

        status_table(env.result)
    return ExitCode.PROBLEMS if status.missing else ExitCode.OK
