"""What several commands share: progress lines on stderr and opening the cache directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from ...protocol.location import Location


def progress_printer(args: argparse.Namespace) -> Callable[[str], None]:
    """A function printing one progress line to stderr, silent with ``--quiet``.

    :param args: the parsed command line (its ``quiet``).
    """

    def emit(line: str) -> None:
        if not args.quiet:
            try:
                print(line, file=sys.stderr, flush=True)
            except OSError:
                # The client went away (an SSH session dropped): finish the work, it is whole either way.
                pass

    return emit


def open_cache(args: argparse.Namespace, create: bool, writable: bool) -> Any:
    """The checked :class:`~airflow_ovcache.core.cachedir.CacheDir` the flags name; its warnings go to stderr.

    :param args: the parsed command line (``cache_dir``, ``group``, ``unsafe_cache_dir``, ``lock_timeout``).
    :param create: create the directory if it does not exist (warm).
    :param writable: the command writes to it (refused on a read-only cache).
    """
    from ...core.cachedir import CacheDir
    from ...core.permissions import AccessPolicy

    policy = AccessPolicy.make(args.group, args.unsafe_cache_dir)
    cache = CacheDir(args.cache_dir, Location(), args.lock_timeout, policy).check(create=create, writable=writable)
    for warning in cache.warnings:
        print(f"ovcache: warning: {warning}", file=sys.stderr)
    return cache


def take_warnings(cache: Any) -> list[str]:
    """The cache's warnings collected so far, once each and sorted, for the result's ``warnings``.

    :param cache: the :class:`~airflow_ovcache.core.cachedir.CacheDir` the command ran on.
    """
    warnings = sorted(set(cache.warnings))
    cache.warnings.clear()
    return warnings


def print_store_items(items: list[dict[str, Any]]) -> None:
    """One line per item of ``install`` or ``store-put`` for a person: coordinates, class, status, why.

    :param items: the result's items (``model``, ``version``, ``device``, ``class_key``, ``status``, ``reason``).
    """
    from ...core.text import printable

    for r in items:
        print(printable(f"{r['model']}@{r['version']} {r['device']} {r.get('class_key') or '-'}: {r['status']}: {r['reason']}"))
