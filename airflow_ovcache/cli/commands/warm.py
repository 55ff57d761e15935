"""``ovcache warm``: compile model versions into the cache as the server would."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...core.text import printable
from ...protocol import ExitCode, WarmStatus
from ..output import Envelope
from .common import open_cache, progress_printer


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Plan the warm in the core, compile each item, and put the items and their summary in ``env.result``.

    :param args: the parsed ``warm`` command line.
    :param env: the envelope the result goes into.
    :return: :attr:`ExitCode.ERROR` if any item failed, else :attr:`ExitCode.OK`.
    """
    env.result, code = warm_result(args)
    if not args.json:
        from ..render import warm_table

        warm_table(env.result["items"], env.result["summary"])
    return code


def warm_result(args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The warm's result and exit code (shared by ``warm`` and the warm step of ``release``).

    :param args: a parsed command line with the ``warm`` flags.
    :return: the result (shape ``warm``) and :attr:`ExitCode.ERROR` if any item failed, else :attr:`ExitCode.OK`.
    """
    from ...core.warm import Warmer, warm_many
    from ...core.warmplan import plan_request

    plan = plan_request(warm_request(args), args.cache_dir)
    repo, items = plan.repository, plan.items
    cache = open_cache(args, create=True, writable=True)
    warmer = Warmer(cache, repository_root=repo.root, force=args.force, on_no_cache=args.no_cache_device, confirm=args.confirm)
    say = progress_printer(args)
    total = len(items)
    done = 0

    def progress(res: Any) -> None:
        nonlocal done
        done += 1
        timing = f" ({res.seconds:.2f} s for this item)" if res.status != WarmStatus.UNCHANGED else ""
        # A failure's reason is printed once, on its "ovcache: error:" line, not here too.
        say(
            printable(
                f"[{done}/{total}] {res.model}@{res.version if res.version is not None else '-'} {res.device}: {res.status}{timing}"
            )
        )

    say(f"warming {total} item(s) into {cache.root}")
    if sys.stderr.isatty() and not args.quiet and total > 1:
        # A person at a terminal gets a live bar; logs and the Airflow hook get one line per item.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
        ) as bar:
            task = bar.add_task("warming", total=total)

            def advance(res: Any) -> None:
                progress(res)
                bar.update(task, advance=1)

            def starting(label: str) -> None:
                bar.update(task, description=printable(f"compiling {label}"))

            results = warm_many(warmer, items, advance, starting)
    else:
        results = warm_many(warmer, items, progress)
    summary = {status.value: sum(1 for r in results if r.status == status) for status in WarmStatus}
    result = {
        "cache_dir": str(cache.root),
        "repository": str(repo.root),
        "items": [r.to_json() for r in results],
        "summary": summary,
        "warnings": sorted({w for r in results for w in r.warnings} | set(repo.problems) | set(plan.warnings)),
    }
    for r in results:
        if r.status == WarmStatus.FAILED:
            print(f"ovcache: error: {r.reason}", file=sys.stderr)
    return result, ExitCode.ERROR if summary[WarmStatus.FAILED] else ExitCode.OK


def warm_request(args: argparse.Namespace) -> Any:
    """The :class:`~airflow_ovcache.core.warmplan.WarmRequest` the warm flags describe (``warm``, ``install``).

    :param args: a parsed command line with the warm's spec and selection flags.
    """
    from ...core.warmplan import WarmRequest

    return WarmRequest(
        repository=args.repository,
        models=args.models or [],
        versions=args.versions,
        version_numbers=args.version_numbers or [],
        config=args.config,
        devices=args.devices or [],
        properties=args.properties,
        compile_mode=args.compile_mode,
        cache_mode=args.cache_mode,
        model_file=args.model_file,
        encryption_key_file=args.encryption_key_file,
        encryption_key_stdin=args.encryption_key_stdin,
        profile=args.profile,
        loader=args.loader,
        loader_path=args.loader_path,
        model_class=args.model_class,
        pipeline=args.pipeline,
        ovms_config=args.ovms_config,
        ovms_path_map=args.ovms_path_map,
    )
