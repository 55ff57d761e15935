"""Rewarm: the nightly repair of one host's cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.text import printable
from .base import OvcacheBaseOperator, reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The report types are for the type checker: the hook's readers are imported where the task runs,
    # not when a DAG file is parsed.
    from ..hooks.reports import RewarmReport


class OvcacheRewarmOperator(OvcacheBaseOperator):
    """
    Verify one host's cache, rebuild every entry a warm can fix, and verify again.

    Missing, corrupt, stale, foreign (another runtime or CPU) and not-loadable
    blobs are rebuilt from the model folder and cache spec recorded with them;
    what a warm cannot fix (a device gone, model files gone) is reported.
    Returns ``{"host", "cache_dir", "ok", "found_summary", "after_summary", "found",
    "rewarmed", "after", "unrepaired"}`` for XCom, which is what the nightly report reads.

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param cache_dir: OpenVINO ``cache_dir`` on the host; default the connection's. (templated)
    :param load_check: verify with a load in a fresh process following each entry's profile, so
        blobs that compile would not load from cache are rebuilt too (default True).
    :param confirm: load each rebuilt blob in a fresh process and require a cache hit (default True).
    :param fail_on_unrepaired: fail the task when something is still not ok afterwards
        (default True). Set False when a report task downstream decides.
    :param command_timeout: seconds the agent may run; default the connection's.
    :param kwargs: to :class:`.OvcacheBaseOperator` (``host_name``, ``encryption_key_conn_id``) and BaseOperator (``task_id``...).
    """

    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "cache_dir")
    ui_color = "#f5e6b9"

    def __init__(self, *, load_check: bool = True, confirm: bool = True, fail_on_unrepaired: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.load_check = load_check
        self.confirm = confirm
        self.fail_on_unrepaired = fail_on_unrepaired

    @reporting_failures
    def execute(self, context: Context) -> dict[str, Any]:
        """Verify, rebuild what verify refuses, verify again; the report goes to XCom, and what stays broken fails the task unless ``fail_on_unrepaired`` is off.

        :param context: the task's context.
        """
        report = self.hook.rewarm(load_check=self.load_check, confirm=self.confirm)
        self._log_summary(report)
        if report.unrepaired and self.fail_on_unrepaired:
            listed = "; ".join(f"{e.describe()}: {e.status} ({e.reason})" for e in report.unrepaired[:20])
            from ..hooks.errors import ProblemsFound

            raise ProblemsFound(
                self.hook.target().with_host(report.host),
                f"{len(report.unrepaired)} entr(ies) could not be repaired in {report.cache_dir}: {listed}",
                "these need a person: a device that is gone or model files that were removed",
            )
        return report.to_xcom()

    def _log_summary(self, report: RewarmReport) -> None:
        from ..hooks.reports import RewarmReport

        def counts(summary: dict[str, int]) -> str:
            return ", ".join(f"{n} {status}" for status, n in summary.items()) or "no entries"

        self.log.info("rewarm on host %s (%s) in %.2fs", report.host, report.cache_dir, report.seconds)
        self.log.info("  found:  %s", counts(RewarmReport._counts(report.found)))
        was = {(e.model, e.version, e.device): e for e in report.found if not e.ok}
        for item in report.rewarmed:
            # A repair means something was wrong: logged as a warning, so a level filter still shows it.
            before = was.get((item.model, item.version, item.device))
            why = f" (was {before.status}: {before.reason})" if before is not None else ""
            self.log.warning(
                "  %s",
                printable(f"rebuilt {item.describe()}: {item.status}{why}" + (f" - {item.reason}" if item.failed else "")),
            )
        self.log.info("  after:  %s", counts(RewarmReport._counts(report.after)))
        for entry in report.unrepaired:
            self.log.warning("  %s", printable(f"unrepaired {entry.describe()}: {entry.status} - {entry.reason}"))
