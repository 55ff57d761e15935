"""One host's release in one process: version folder, devices, warm, verify, invalidate, stopping at the first failure.

A release done as one Airflow task per step costs six task instances per host
(6,000 for 1,000 hosts) and one agent start and transport session per step.
``ovcache release`` runs the same steps in one agent process; this module is
the sequence itself: which steps, in what order, what stops it, and the
one-line summary of each step. What each step *does* is the per-step
command's own code (the CLI passes each step in as a function), so a release
and the six separate commands cannot drift apart.

Standard library only at import time; OpenVINO is imported by the steps that compile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import ExitCode, ReleaseStep, StepStatus
from ..protocol.location import Location
from .errors import ModelNotFound, OvcacheError
from .text import human_bytes, one_line

# One step: runs, and returns its result (the shape of the command of the same name) and exit code.
StepRun = Callable[[], tuple[dict[str, Any], ExitCode]]


@dataclass
class StepOutcome:
    """What one step of a release did.

    :param step: the step.
    :param status: ``ok``, ``failed`` (the release stopped here) or ``not-run`` (an earlier step failed).
    :param summary: one line saying what the step found or did, or why it failed.
    :param exit_code: the step's own exit code, as its command would exit; None for a step not run.
    :param seconds: how long the step took.
    :param result: the step's result, in the shape of the command of the same name; None when it
        raised before producing one, or did not run.
    :param error: the error the step raised, if it raised one.
    """

    step: ReleaseStep
    status: StepStatus
    summary: str
    exit_code: int | None = None
    seconds: float = 0.0
    result: dict[str, Any] | None = None
    error: OvcacheError | None = None

    def to_json(self) -> dict[str, Any]:
        """The step as the envelope's ``result.steps[]`` holds it (shape ``release_step``)."""
        return {
            "step": self.step.value,
            "status": self.status.value,
            "summary": self.summary,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 4),
            "result": self.result,
            "error": self.error.to_json() if self.error else None,
        }


def run_steps(
    steps: list[tuple[ReleaseStep, StepRun]], where: Location, progress: Callable[[StepOutcome], None] | None = None
) -> list[StepOutcome]:
    """Run the steps in order; the first that fails (exit code not 0, or an error) stops the rest.

    Every step of :class:`~airflow_ovcache.protocol.ReleaseStep` is in the answer, those after a
    failure as ``not-run``, so a reader never has to guess whether a step was skipped or forgotten.

    :param steps: each step with the function that runs it.
    :param where: the host, model and version, filled into errors that do not name them.
    :param progress: told each step's outcome as soon as it is known (a log line per step while the release runs).
    """
    from .fsutil import os_error

    outcomes: list[StepOutcome] = []
    failed: ReleaseStep | None = None
    for step, run in steps:
        if failed is not None:
            outcomes.append(StepOutcome(step, StepStatus.NOT_RUN, f"not run: step {failed} failed"))
            if progress is not None:
                progress(outcomes[-1])
            continue
        t0 = time.perf_counter()
        try:
            result, code = run()
        except OvcacheError as exc:
            exc.at(where)
            outcome = StepOutcome(step, StepStatus.FAILED, exc.one_line(), ExitCode.ERROR, error=exc)
        except OSError as exc:
            err = os_error(exc, f"{exc.filename}" if getattr(exc, "filename", None) else f"release step {step}", where)
            outcome = StepOutcome(step, StepStatus.FAILED, err.one_line(), ExitCode.ERROR, error=err)
        else:
            status = StepStatus.OK if code == ExitCode.OK else StepStatus.FAILED
            outcome = StepOutcome(step, status, SUMMARIES[step](result, code), code, result=result)
        outcome.seconds = time.perf_counter() - t0
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome)
        if outcome.status == StepStatus.FAILED:
            failed = step
    return outcomes


def exit_code(outcomes: list[StepOutcome]) -> ExitCode:
    """The release's exit code: the failed step's (1 problems found, 2 error), else 0.

    :param outcomes: what :func:`run_steps` returned.
    """
    for outcome in outcomes:
        if outcome.status == StepStatus.FAILED:
            return ExitCode(outcome.exit_code if outcome.exit_code is not None else ExitCode.ERROR)
    return ExitCode.OK


def wait_for_version(repository: Path, model: str, version: int, wait: float = 0.0) -> tuple[dict[str, Any], ExitCode]:
    """The version step: ``model``'s version folder ``version`` is in the repository, waiting up to ``wait`` seconds.

    A bounded wait for a copy that lags the release by seconds; a long wait belongs to a
    deferrable sensor, not to an agent process holding a transport session open.

    :param repository: the model repository root.
    :param model: the model.
    :param version: the version number.
    :param wait: seconds to keep looking (once a second) before giving up; 0 looks once.
    :raises ModelNotFound: the model or the version folder is not there.
    """
    from .repository import ModelRepository

    repo = ModelRepository(repository)
    t0 = time.monotonic()
    while True:
        try:
            versions = repo.versions(model)
        except ModelNotFound:
            versions = None
            if time.monotonic() - t0 >= wait:
                raise
        if versions is not None and version in versions:
            result = {
                "repository": str(repo.root),
                "model": model,
                "version": version,
                "versions": versions,
                "waited_seconds": round(time.monotonic() - t0, 3),
            }
            return result, ExitCode.OK
        if time.monotonic() - t0 >= wait:
            have = ", ".join(map(str, versions or [])) or "none"
            waited = f" after waiting {wait:g} s" if wait else ""
            raise ModelNotFound(
                f"version {version} of model {model} is not in repository {repo.root}{waited} (versions there: {have})",
                Location(model=model, version=version),
                "copy the release to the host first, or give the agent --wait SECONDS (a DAG waits with a sensor)",
            )
        time.sleep(min(1.0, max(0.0, wait - (time.monotonic() - t0))))


def _version_summary(result: dict[str, Any], code: ExitCode) -> str:
    return f"version {result['version']} of {result['model']} is in {result['repository']}"


def _devices_summary(result: dict[str, Any], code: ExitCode) -> str:
    devices = result.get("devices") or []
    cannot = [d["name"] for d in devices if not d.get("can_cache")]
    if cannot:
        return f"device(s) {', '.join(cannot)} cannot cache (no EXPORT_IMPORT): OpenVINO would write no blob"
    return f"{', '.join(d['name'] for d in devices)} can cache"


def _warm_summary(result: dict[str, Any], code: ExitCode) -> str:
    counts = result.get("summary") or {}
    # An install (release --from-store) counts what it installed and what it compiled after a fallback.
    kinds = (
        ("installed", "warmed", "unchanged", "failed") if "installed" in counts else ("warmed", "unchanged", "skipped", "failed")
    )
    text = ", ".join(f"{counts.get(k, 0)} {k}" for k in kinds)
    fell_back = sum(1 for i in result.get("items") or [] if i.get("fallback"))
    if fell_back:
        text += f" ({fell_back} compiled here after a fallback)"
    failed = [i for i in result.get("items") or [] if i.get("status") == "failed"]
    if failed:
        text += ": " + "; ".join(one_line(str(i.get("reason") or "failed")) for i in failed)
    return text


def _verify_summary(result: dict[str, Any], code: ExitCode) -> str:
    counts = result.get("summary") or {}
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no entries"
    problems = [e for e in result.get("entries") or [] if e.get("status") != "ok"]
    if problems:
        listed = "; ".join(
            f"model {e.get('model')}, version {e.get('version')}, device {e.get('device')}: {e.get('status')} ({e.get('reason')})"
            for e in problems[:5]
        )
        text += f": {listed}" + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    return one_line(text)


def _invalidate_summary(result: dict[str, Any], code: ExitCode) -> str:
    plan = result.get("plan") or {}
    applied = result.get("applied") or {}
    removed = len(applied.get("removed") or []) if applied else 0
    text = f"removed {removed} blob(s), freed {human_bytes(int(applied.get('bytes_freed') or 0))} (retain {result.get('policy')})"
    if not plan.get("budget_met", True):
        text += f"; the size budget {human_bytes(plan.get('budget'))} is not met"
    return text


# How each step's result reads in one line.
SUMMARIES: dict[ReleaseStep, Callable[[dict[str, Any], ExitCode], str]] = {
    ReleaseStep.VERSION: _version_summary,
    ReleaseStep.DEVICES: _devices_summary,
    ReleaseStep.WARM: _warm_summary,
    ReleaseStep.VERIFY: _verify_summary,
    ReleaseStep.INVALIDATE: _invalidate_summary,
}
