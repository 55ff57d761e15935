"""``ovcache repair-manifest``: set a corrupt manifest aside and start a new one (blobs are kept)."""

from __future__ import annotations

import argparse

from ...protocol import ExitCode
from ..output import Envelope
from .common import open_cache


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Set the manifest aside if it is corrupt; say in ``env.result`` whether it was.

    :param args: the parsed ``repair-manifest`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.OK`.
    """
    from ...core.errors import ManifestCorrupt

    cache = open_cache(args, create=False, writable=True)
    with cache.manifest_lock():
        try:
            manifest = cache.read_manifest()
            env.result = {"cache_dir": str(cache.root), "repaired": False, "entries": len(manifest.entries), "set_aside": None}
            message = f"manifest is sound ({len(manifest.entries)} entries); nothing to do"
        except ManifestCorrupt as exc:
            aside = cache.set_aside_manifest()
            env.result = {
                "cache_dir": str(cache.root),
                "repaired": True,
                "entries": 0,
                "set_aside": str(aside),
                "was": exc.message,
            }
            message = f"set the corrupt manifest aside as {aside}; blobs are untouched and become managed again on the next warm"
    if not args.json:
        print(message)
    return ExitCode.OK
