"""``ovcache sample-repository``: build a small model repository (for the demo and trials)."""

from __future__ import annotations

import argparse

from ...core import values
from ...core.errors import UsageError
from ...protocol import ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Build the repository the flags describe and put its path in ``env.result``.

    :param args: the parsed ``sample-repository`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.OK`.
    """
    from ...samples import build_sample_repository

    models: dict[str, int] | None = None
    if args.models:
        models = {}
        for spec in args.models:
            name, _, count = spec.partition(":")
            try:
                models[name] = values.parse_count(count or "1", minimum=1, maximum=100)
            except ValueError as exc:
                raise UsageError(f"--model {spec!r}: the number of versions {exc}", hint="write NAME or NAME:VERSIONS") from None
    root = build_sample_repository(args.path, models, size_mb=args.size_mb, kind=args.kind)
    env.result = {"repository": str(root.resolve())}
    if not args.json:
        print(f"sample repository at {root}")
    return ExitCode.OK
