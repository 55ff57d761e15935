"""Verify: prove that each managed blob on one host would serve the model deployed now."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.text import printable
from .arguments import as_version_numbers, check_choice, is_template
from .base import OvcacheBaseOperator, reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The report types are for the type checker: the hook's readers are imported where the task runs,
    # not when a DAG file is parsed.
    from ..hooks.reports import VerifyReport


class OvcacheVerifyOperator(OvcacheBaseOperator):
    """
    Verify the managed blobs in one host's cache directory.

    Each entry gets one status: ``ok``, or the first problem found (``missing``,
    ``corrupt``, ``stale-model``, ``runtime-mismatch``, ``isa-mismatch``,
    ``device-missing``, ``cannot-cache``, ``not-cached``, ...). Returns
    ``{"host", "cache_dir", "ok", "summary", "problems", "entries": [...],
    "repairable": [{"model", "version", "device"}, ...]}`` for XCom;
    ``repairable`` lists what a warm-up would rebuild.

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param model: only entries of this model. (templated)
    :param version: only entries of this version (needs ``model``). (templated)
    :param device: only entries for this device. (templated)
    :param cache_dir: OpenVINO ``cache_dir`` on the host; default the connection's. (templated)
    :param load_check: also load each blob in a fresh process, following the entry's serving profile,
        and require ``LOADED_FROM_CACHE``. This proves the profile's call hits the blob, not that the
        server does; each entry's ``served`` field (the evidence) speaks for the server.
    :param infer_check: also compare cached and fresh outputs (implies ``load_check``).
    :param checksum: ``changed`` (re-hash blobs whose stat changed, default) or ``always``.
    :param fail_on_problems: fail the task when any entry is not ``ok`` (default). Set to
        ``False`` to hand the result to a repair task instead.
    :param command_timeout: seconds the agent may run; default the connection's.
    :param kwargs: to :class:`.OvcacheBaseOperator` (``host_name``, ``encryption_key_conn_id``) and BaseOperator (``task_id``...).
    """

    label_fields = ("model", "version")
    template_fields: Sequence[str] = ("ovcache_conn_id", "host_name", "model", "version", "device", "cache_dir")
    ui_color = "#c9ecd4"

    def __init__(
        self,
        *,
        model: str | None = None,
        version: int | str | None = None,
        device: str | None = None,
        load_check: bool = False,
        infer_check: bool = False,
        checksum: str = "changed",
        fail_on_problems: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_choice("checksum", checksum, ("changed", "always"))
        if version not in (None, "") and not is_template(version):
            numbers = as_version_numbers(version)
            if not numbers or len(numbers) != 1:
                raise ValueError(f"version={version!r} must be one version number")
            if not model:
                raise ValueError("version needs a model")
        self.model = model
        self.version = version
        self.device = device
        self.load_check = load_check
        self.infer_check = infer_check
        self.checksum = checksum
        self.fail_on_problems = fail_on_problems

    @reporting_failures
    def execute(self, context: Context) -> dict[str, Any]:
        """Verify the host's cache; the report goes to XCom, and problems fail the task unless ``fail_on_problems`` is off.

        :param context: the task's context.
        """
        numbers = as_version_numbers(self.version)
        report = self.hook.verify(
            model=self.model or None,
            version=numbers[0] if numbers else None,
            device=self.device or None,
            load_check=self.load_check,
            infer_check=self.infer_check,
            checksum=self.checksum,
        )
        self._log_summary(report)
        if report.problems and self.fail_on_problems:
            listed = "; ".join(f"{e.describe()}: {e.status} ({e.reason})" for e in report.problems[:20])
            more = f"; and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
            from ..hooks.errors import ProblemsFound

            raise ProblemsFound(
                self.hook.target(self.model, None if not numbers else str(numbers[0]), self.device).with_host(report.host),
                f"verify found {len(report.problems)} problem(s) in {report.cache_dir}: {listed}{more}",
                f"{len(report.repairable)} can be rebuilt by a warm-up of those items; set fail_on_problems=False to hand the result to a repair task",
            )
        return report.to_xcom()

    def _log_summary(self, report: VerifyReport) -> None:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(report.summary.items())) or "no entries"
        self.log.info("verify on host %s (%s): %s in %.2fs", report.host, report.cache_dir, counts, report.seconds)
        for entry in report.entries:
            # The load time is a compile following the entry's profile; only "served" speaks for the server.
            load = (
                f"; a compile following its profile loads from cache ({entry.load_ms:.1f} ms)"
                if entry.load_ms is not None
                else ""
            )
            served = f"; served: {entry.served_text()}" if entry.model is not None else ""
            if entry.server_compiled:
                shadows = f" (most likely instead of {entry.shadows})" if entry.shadows else ""
                self.log.warning("  %s", printable(f"{entry.describe()}: server compiled something else{shadows} - {entry.hint}"))
            elif entry.ok:
                self.log.info("  %s", printable(f"{entry.describe()}: ok{load}{served}"))
            else:
                self.log.warning("  %s", printable(f"{entry.describe()}: {entry.status} - {entry.reason}{served}"))
