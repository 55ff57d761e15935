"""One module per ``ovcache`` command; each exposes ``run(args, env) -> ExitCode``.

``main`` imports only the module of the command it was given, so a ``version``
or ``status`` run does not load what ``warm`` needs.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable

from ...protocol import ExitCode
from ..output import Envelope

Command = Callable[[argparse.Namespace, Envelope], ExitCode]

# Command name -> module under this package.
MODULES = {
    "warm": "warm",
    "verify": "verify",
    "invalidate": "invalidate",
    "status": "status",
    "devices": "devices",
    "models": "models",
    "rewarm": "rewarm",
    "release": "release",
    "store-put": "store_put",
    "install": "install",
    "store-prune": "store_prune",
    "repair-manifest": "repair_manifest",
    "sample-repository": "sample_repository",
    "version": "version",
}


def command(name: str) -> Command:
    """The ``run`` function of command ``name``.

    :param name: a command name as typed (``repair-manifest``); a key of :data:`MODULES`.
    """
    module = importlib.import_module(f".{MODULES[name]}", __name__)
    run: Command = module.run
    return run
