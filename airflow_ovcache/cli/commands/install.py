"""``ovcache install``: install model versions from a blob store, proven by a load; compile where a check fails."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...core.text import printable
from ...protocol import ExitCode
from ...protocol.codes import InstallStatus
from ..output import Envelope
from .common import open_cache, print_store_items, progress_printer
from .warm import warm_request


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Plan as a warm does, then install (or compile) each item; put the items and their summary in ``env.result``.

    :param args: the parsed ``install`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.ERROR` if any item failed, else :attr:`ExitCode.OK` (a fallback compile is not a failure:
        the item says why it fell back).
    """
    env.result, code = install_result(args)
    if not args.json:
        print_store_items(env.result["items"])
    return code


def install_result(args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The install's result and exit code (shared by ``install`` and the warm step of ``release --from-store``).

    :param args: a parsed command line with the ``install`` flags (warm's selection and compile flags, ``store``).
    :return: the result (shape ``install``) and :attr:`ExitCode.ERROR` if any item failed, else :attr:`ExitCode.OK`.
    :raises StoreError: the store cannot be reached (without ``--compile-if-unreachable``); nothing was fetched or compiled.
    """
    from ...core.blobstore import BlobStore, StoreError, UnreachableStore, open_store
    from ...core.install import Installer, InstallResult
    from ...core.warm import WarmResult
    from ...core.warmplan import plan_request

    compile_instead = bool(getattr(args, "compile_if_unreachable", False))
    store: BlobStore
    try:
        store = open_store(args.store).check()
    except StoreError as exc:
        if not compile_instead:
            raise
        print(printable(f"ovcache: warning: {exc.message}: every item is compiled here instead"), file=sys.stderr)
        store = UnreachableStore(exc)
    plan = plan_request(warm_request(args), args.cache_dir)
    cache = open_cache(args, create=True, writable=True)
    installer = Installer(cache, store, repository_root=plan.repository.root, compile_if_unreachable=compile_instead)
    say = progress_printer(args)
    say(f"installing {len(plan.items)} item(s) from {store.description} into {cache.root}")
    results: list[Any] = []
    try:
        for number, item in enumerate(plan.items, 1):
            if isinstance(item, WarmResult):
                result = InstallResult(item.model, item.version, item.device, InstallStatus.FAILED, item.reason, error=item.error)
            else:
                result = installer.install(*item)
            results.append(result)
            say(printable(f"[{number}/{len(plan.items)}] {result.model}@{result.version} {result.device}: {result.status}"))
            if result.fallback:
                print(printable(f"ovcache: warning: {result.fallback}"), file=sys.stderr)
    finally:
        installer.close()
    summary = {status.value: sum(1 for r in results if r.status == status) for status in InstallStatus}
    answer = {
        "cache_dir": str(cache.root),
        "repository": str(plan.repository.root),
        "store": store.description,
        "items": [r.to_json() for r in results],
        "summary": summary,
        "warnings": sorted({w for r in results for w in r.warnings} | set(plan.repository.problems) | set(plan.warnings)),
    }
    for r in results:
        if r.status == InstallStatus.FAILED:
            print(printable(f"ovcache: error: {r.reason}"), file=sys.stderr)
    return answer, ExitCode.ERROR if summary[InstallStatus.FAILED] else ExitCode.OK
