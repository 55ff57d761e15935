"""``ovcache release``: one host's whole release in one process (version, devices, warm, verify, invalidate).

Each step is the per-step command's own code (``devices``, ``warm``, ``verify``,
``invalidate``), run with the flags that command would be given by the release
DAG; :mod:`airflow_ovcache.core.release` runs them in order and stops at the
first failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ...core.errors import UsageError
from ...core.text import printable
from ...protocol import ExitCode, ReleaseStep, StepStatus
from ...protocol.location import Location
from ..output import Envelope
from .common import progress_printer


def _step_args(args: argparse.Namespace, **flags: object) -> argparse.Namespace:
    """The release's command line as one step's command would have parsed it, with that step's own flags."""
    return argparse.Namespace(**{**vars(args), **flags})


def warm_step(args: argparse.Namespace, warm_args: argparse.Namespace) -> tuple[dict[str, Any], ExitCode]:
    """The release's warm step: a warm; with ``--store``, then a put (a builder); with ``--from-store``, an install.

    A builder's put that fails is a warning in the result (``store_put``), not a failed step: this
    host's cache is warm, and the class's other hosts compile for themselves. An installer whose
    store cannot be reached compiles here, and each item's ``fallback`` says why, as an install
    does for a set that fails a check: the release is not held up by a lost mount.

    :param args: the parsed ``release`` command line.
    :param warm_args: the warm step's own command line (what ``warm`` would be given).
    :return: the step's result (shape ``warm``, or ``install`` with ``--from-store``) and exit code.
    """
    from ...core.blobstore import StoreError
    from .install import install_result
    from .store_put import store_put_result
    from .warm import warm_result

    if args.store and args.from_store:
        return install_result(_step_args(warm_args, store=args.store, compile_if_unreachable=True))
    result, code = warm_result(warm_args)
    if args.store and code == ExitCode.OK:
        put_args = _step_args(args, model=args.model, version_number=args.version_number, device=None)
        try:
            result["store_put"], _ = store_put_result(put_args)
        except StoreError as exc:
            print(
                printable(f"ovcache: warning: {exc.message} (the other hosts of this class compile for themselves)"),
                file=sys.stderr,
            )
            result["store_put"] = {"store": args.store, "items": [], "problems": [exc.message]}
    return result, code


def run(args: argparse.Namespace, env: Envelope) -> ExitCode:
    """Run the host's release steps and put each step's outcome in ``env.result``.

    :param args: the parsed ``release`` command line.
    :param env: the envelope the result goes into.
    :return: the failed step's exit code (:attr:`ExitCode.PROBLEMS` or :attr:`ExitCode.ERROR`), else :attr:`ExitCode.OK`.
    """
    from ...core.release import StepOutcome, exit_code, run_steps, wait_for_version
    from .devices import devices_result
    from .invalidate import invalidate_result
    from .verify import verify_result

    model, version = args.model, args.version_number
    if args.from_store and not args.store:
        raise UsageError("--from-store needs --store (the blob store to install from)", hint="add --store DIR")
    devices = args.devices or ["CPU"]
    warm_args = _step_args(
        args,
        models=[model],
        versions=None,
        version_numbers=[version],
        # OVMS's config.json says how it compiles; the devices are only checked.
        devices=None if args.ovms_config else args.devices,
        confirm=True,
        no_cache_device="fail",
    )
    verify_args = _step_args(
        args, model=model, device=None, load_check=True, infer_check=False, checksum="changed", no_device_check=False
    )
    invalidate_args = _step_args(
        args,
        models=[model],
        versions=args.retain,
        no_stale=False,
        no_foreign=False,
        orphans=False,
        orphan_min_age=600.0,
        max_bytes=None,
        dry_run=False,
    )
    # The CPU's instruction set comes from the cache's host facts once the cache exists (a first
    # release creates it in the warm step, and the devices step probes instead).
    known_cache = args.cache_dir if args.cache_dir and os.path.isdir(args.cache_dir) else None
    steps = [
        (ReleaseStep.VERSION, lambda: wait_for_version(args.repository, model, version, args.wait)),
        (ReleaseStep.DEVICES, lambda: devices_result(devices, known_cache)),
        (ReleaseStep.WARM, lambda: warm_step(args, warm_args)),
        (ReleaseStep.VERIFY, lambda: verify_result(verify_args)),
        (ReleaseStep.INVALIDATE, lambda: invalidate_result(invalidate_args)),
    ]
    say = progress_printer(args)

    def progress(outcome: StepOutcome) -> None:
        line = printable(f"release {model}@{version} step {outcome.step}: {outcome.status}: {outcome.summary}")
        if outcome.status == StepStatus.FAILED:
            print(f"ovcache: error: {printable(outcome.summary)}", file=sys.stderr)
        # A person gets the steps on stdout; with --json they are progress lines, and stdout stays the envelope.
        if args.json:
            say(line)
        else:
            print(line, flush=True)

    outcomes = run_steps(steps, Location(model=model, version=version), progress)
    failed = next((o for o in outcomes if o.status == StepStatus.FAILED), None)
    env.result = {
        "cache_dir": os.path.abspath(args.cache_dir),
        "repository": os.path.abspath(args.repository),
        "model": model,
        "version": version,
        "ok": failed is None,
        "failed_step": failed.step.value if failed else None,
        "steps": [o.to_json() for o in outcomes],
    }
    return exit_code(outcomes)
