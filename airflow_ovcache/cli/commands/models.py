"""``ovcache models``: models and versions in a repository, and what a policy selects."""

from __future__ import annotations

import argparse

from ...protocol import ExitCode
from ..output import Envelope


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """List each model's versions and the policy's selection in ``env.result``.

    :param args: the parsed ``models`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.OK`.
    """
    from ...core.policy import VersionPolicy
    from ...core.repository import ModelRepository

    repo = ModelRepository(args.repository)
    policy = VersionPolicy.parse(args.versions)
    rows = []
    for model in args.models or repo.models():
        versions = repo.versions(model)
        rows.append(
            {"name": model, "versions": versions, "selected": policy.select(versions), "latest": max(versions, default=None)}
        )
    env.result = {"repository": str(repo.root), "policy": str(policy), "models": rows, "problems": repo.problems}
    if not args.json:
        from ..render import models_table

        models_table(env.result)
    return ExitCode.OK
