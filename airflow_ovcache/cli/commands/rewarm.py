"""``ovcache rewarm``: verify, rebuild what a warm can fix, report the rest."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...core.errors import this_host
from ...core.text import printable
from ...protocol import ExitCode, WarmStatus
from ..output import Envelope
from .common import open_cache, progress_printer, take_warnings


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Repair what a warm can and put what was found, rebuilt and left in ``env.result``.

    :param args: the parsed ``rewarm`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if an entry is still not ok, else :attr:`ExitCode.OK`.
    """
    from ...core.rewarm import rewarm

    cache = open_cache(args, create=False, writable=True)
    say = progress_printer(args)

    def progress(res: Any) -> None:
        say(
            printable(f"rewarm {res.model}@{res.version} {res.device}: {res.status}")
            + (f" - {res.reason}" if res.status == WarmStatus.FAILED else "")
        )

    report = rewarm(cache, load_check=args.load_check, confirm=not args.no_confirm, progress=progress)
    env.result = {"cache_dir": str(cache.root), **report.to_json(), "warnings": take_warnings(cache)}
    for res in report.unrepaired:
        print(
            printable(
                f"ovcache: unrepaired: host {this_host()}, model {res.model}, version {res.version}, device {res.device}: {res.status}: {res.reason}"
            ),
            file=sys.stderr,
        )
    if not args.json:
        from ..render import verify_table, warm_table

        if report.warmed:
            counted = (WarmStatus.WARMED, WarmStatus.FAILED)
            warm_table(env.result["rewarmed"], {s.value: sum(1 for w in report.warmed if w.status == s) for s in counted})
        verify_table(env.result["after"], env.result["after_summary"])
    return ExitCode.PROBLEMS if report.unrepaired else ExitCode.OK
