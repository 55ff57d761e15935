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

from ...core.text import printable
from ...protocol import ExitCode, ReleaseStep, StepStatus
from ...protocol.location import Location
from ..output import Envelope
from .common import progress_printer


def _step_args(args: argparse.Namespace, **flags: object) -> argparse.Namespace:
    """The release's command line as one step's command would have parsed it, with that step's own flags."""
    return argparse.Namespace(**{**vars(args), **flags})


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
    from .warm import warm_result

    model, version = args.model, args.version_number
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
        (ReleaseStep.WARM, lambda: warm_result(warm_args)),
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
