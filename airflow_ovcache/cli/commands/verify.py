"""``ovcache verify``: check each managed blob would serve the deployed model."""

from __future__ import annotations

import argparse
from typing import Any

from ...protocol import ExitCode
from ..output import Envelope
from .common import open_cache, take_warnings


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Verify the entries the flags select and put them, their summary and the problem count in ``env.result``.

    :param args: the parsed ``verify`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if any entry is not ok, else :attr:`ExitCode.OK`.
    """
    env.result, code = verify_result(args)
    if not args.json:
        from ..render import verify_table

        verify_table(env.result["entries"], env.result["summary"])
    return code


def verify_result(args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The verify's result and exit code (shared by ``verify`` and the verify step of ``release``).

    :param args: a parsed command line with the ``verify`` flags.
    :return: the result (shape ``verify``) and :attr:`ExitCode.PROBLEMS` if any entry is not ok, else :attr:`ExitCode.OK`.
    """
    from ...core.verify import Verifier, summarize

    cache = open_cache(args, create=False, writable=False)
    verifier = Verifier(
        cache,
        checksum=args.checksum,
        load_check=args.load_check,
        infer_check=args.infer_check,
        check_devices=not args.no_device_check,
    )
    results = verifier.verify(args.model, args.version_number, args.device)
    summary = summarize(results)
    problems = [r for r in results if not r.ok]
    result = {
        "cache_dir": str(cache.root),
        "entries": [r.to_json() for r in results],
        "summary": summary,
        "problems": len(problems),
        "warnings": take_warnings(cache),
    }
    return result, ExitCode.PROBLEMS if problems else ExitCode.OK
