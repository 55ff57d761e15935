"""``ovcache store-prune``: remove a blob store's sets of versions a version policy no longer keeps."""

from __future__ import annotations

import argparse

from ...core.text import printable
from ...protocol import ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Apply the retention policy to the store and list the sets removed (or, with ``--dry-run``, that would be).

    :param args: the parsed ``store-prune`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.OK`.
    """
    from ...core.blobstore import open_store, prune
    from ...core.policy import VersionPolicy

    keep = VersionPolicy.parse(args.keep)
    store = open_store(args.store).check(writable=not args.dry_run)
    removed = prune(store, keep, args.model, dry_run=args.dry_run)
    env.result = {
        "store": store.description,
        "keep": str(keep),
        "dry_run": args.dry_run,
        "removed": [s.to_json() for s in removed],
        "kept": [s.to_json() for s in store.list(args.model)] if not args.dry_run else [],
    }
    if not args.json:
        verb = "would remove" if args.dry_run else "removed"
        for s in removed:
            print(printable(f"{verb} {s.key.label()} (object {s.digest[:16]})"))
        print(f"{len(removed)} set(s) {verb}, keeping {keep}")
    return ExitCode.OK
