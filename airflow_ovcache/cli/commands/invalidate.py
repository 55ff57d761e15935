"""``ovcache invalidate``: remove blobs of retired versions, stale and foreign blobs."""

from __future__ import annotations

import argparse
from typing import Any

from ...protocol import ExitCode
from ..output import Envelope
from .common import open_cache, take_warnings


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Plan the removals, apply them unless ``--dry-run``, and put the plan and what was done in ``env.result``.

    :param args: the parsed ``invalidate`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.PROBLEMS` if ``--max-bytes`` cannot be met, else :attr:`ExitCode.OK`.
    """
    env.result, code = invalidate_result(args)
    if not args.json:
        from ..render import invalidate_table

        invalidate_table(env.result["plan"], env.result["applied"], args.dry_run)
    return code


def invalidate_result(args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The invalidation's result and exit code (shared by ``invalidate`` and the invalidate step of ``release``).

    :param args: a parsed command line with the ``invalidate`` flags.
    :return: the result (shape ``invalidate``) and :attr:`ExitCode.PROBLEMS` if ``--max-bytes`` cannot be met,
        else :attr:`ExitCode.OK`.
    """
    from ...core.invalidate import apply_plan, plan_invalidation
    from ...core.policy import VersionPolicy

    cache = open_cache(args, create=False, writable=not args.dry_run)
    policy = VersionPolicy.parse(args.versions) if args.versions else None
    policies = None
    if args.ovms_config and policy is None:
        from ...core.ovms_plan import ovms_retention, parse_path_map

        # Keep what the server serves: each model's own model_version_policy.
        policies = ovms_retention(args.ovms_config, parse_path_map(args.ovms_path_map))
    plan = plan_invalidation(
        cache,
        policy=policy,
        policies=policies,
        models=args.models,
        stale=not args.no_stale,
        foreign=not args.no_foreign,
        orphans=args.orphans,
        orphan_min_age=args.orphan_min_age,
        max_bytes=args.max_bytes,
    )
    applied = None if args.dry_run else apply_plan(cache, plan)
    result = {
        "cache_dir": str(cache.root),
        "dry_run": bool(args.dry_run),
        "policy": str(policy) if policy else ("OVMS config model_version_policy" if policies else "all"),
        "plan": plan.to_json(),
        "applied": applied.to_json() if applied else None,
        "warnings": take_warnings(cache),
    }
    return result, ExitCode.OK if plan.budget_met else ExitCode.PROBLEMS
