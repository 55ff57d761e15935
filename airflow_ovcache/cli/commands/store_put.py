"""``ovcache store-put``: put verified managed entries into a blob store, filed under this host's hardware class."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...protocol import ExitCode
from ...protocol.codes import PutStatus
from ..output import Envelope
from .common import open_cache, print_store_items, take_warnings


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Check and store each selected entry; put the items and their summary in ``env.result``.

    :param args: the parsed ``store-put`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.ERROR` if any entry was not stored (or none was selected), else :attr:`ExitCode.OK`.
    """
    env.result, code = store_put_result(args)
    if not args.json:
        print_store_items(env.result["items"])
    return code


def store_put_result(args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The put's result and exit code (shared by ``store-put`` and the warm step of ``release --store``).

    :param args: a parsed command line with ``cache_dir``, ``store`` and the ``model``, ``version_number``
        and ``device`` selection.
    :return: the result (shape ``store_put``) and :attr:`ExitCode.ERROR` if an entry was not stored
        (or none was selected), else :attr:`ExitCode.OK`.
    :raises StoreError: the store cannot be reached or written.
    """
    from ...core.blobstore import open_store
    from ...core.install import put_entries

    store = open_store(args.store).check(writable=True)
    cache = open_cache(args, create=False, writable=False)
    entries = cache.read_manifest().select(args.model, args.version_number, args.device)
    results = put_entries(cache, store, entries)
    summary = {status.value: sum(1 for r in results if r.status == status) for status in PutStatus}
    result = {
        "cache_dir": str(cache.root),
        "store": store.description,
        "items": [r.to_json() for r in results],
        "summary": summary,
        "warnings": take_warnings(cache),
    }
    for r in results:
        if r.status == PutStatus.FAILED:
            print(f"ovcache: error: {r.reason}", file=sys.stderr)
    if not entries:
        print(f"ovcache: error: no managed entry in {cache.root} matches (warm it first)", file=sys.stderr)
    return result, ExitCode.ERROR if summary[PutStatus.FAILED] or not entries else ExitCode.OK
