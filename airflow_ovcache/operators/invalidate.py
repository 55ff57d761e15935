"""Invalidate: remove exactly the blobs that should go from one host's cache, and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..core.text import human_bytes, printable
from .arguments import as_names, path_map
from .base import OvcacheBaseOperator, reporting_failures

if TYPE_CHECKING:
    from airflow.sdk import Context

    # The report types are for the type checker: the hook's readers are imported where the task runs,
    # not when a DAG file is parsed.
    from ..hooks.reports import InvalidateReport


class OvcacheInvalidateOperator(OvcacheBaseOperator):
    """
    Remove blobs of retired versions, stale and foreign blobs from one host's cache.

    The agent plans first (what goes, why, how many bytes it frees), then applies
    the plan under the manifest lock, re-checking each blob; with
    ``dry_run=True`` it only plans. It never deletes outside the cache
    directory, never a blob a retained version still uses. Returns
    ``{"host", "cache_dir", "dry_run", "policy", "removals": [...], "removed",
    "bytes_freed", "bytes_before", "bytes_after", "budget_met", ...}`` for XCom.

    :param ovcache_conn_id: the ``ovcache`` connection of the host. (templated)
    :param models: limit to these model(s). (templated)
    :param versions: retention policy over recorded versions (``latest:2``, ``specific:3,4``,
        ``all``); default: keep every version. (templated)
    :param stale: remove blobs whose model files changed or vanished (default True).
    :param foreign: remove blobs of another OpenVINO build or CPU (default True).
    :param orphans: also remove blobs no entry accounts for (default False).
    :param orphan_min_age: seconds an orphan must be old to be removed (agent default 600).
    :param max_bytes: evict older retained versions until the cache fits, e.g. ``"20G"``. (templated)
    :param dry_run: only plan and report; remove nothing.
    :param fail_on_problems: fail when the cache still exceeds ``max_bytes`` (default True).
    :param cache_dir: OpenVINO ``cache_dir`` on the host; default the connection's. (templated)
    :param ovms_config: OpenVINO Model Server's ``config.json`` on the host: without ``versions``,
        keep what each model's ``model_version_policy`` serves; default the connection's. (templated)
    :param ovms_path_map: with ``ovms_config``: server path prefix to agent path prefix. (templated)
    :param command_timeout: seconds the agent may run; default the connection's.
    :param kwargs: to :class:`.OvcacheBaseOperator` (``host_name``, ``encryption_key_conn_id``) and BaseOperator (``task_id``...).
    """

    label_fields = ("models",)
    template_fields: Sequence[str] = (
        "ovcache_conn_id",
        "host_name",
        "models",
        "versions",
        "max_bytes",
        "cache_dir",
        "ovms_config",
        "ovms_path_map",
    )
    ui_color = "#f5d6c9"

    def __init__(
        self,
        *,
        models: Sequence[str] | str | None = None,
        versions: str | None = None,
        stale: bool = True,
        foreign: bool = True,
        orphans: bool = False,
        orphan_min_age: float | None = None,
        max_bytes: str | int | None = None,
        dry_run: bool = False,
        fail_on_problems: bool = True,
        ovms_config: str | None = None,
        ovms_path_map: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.ovms_config = ovms_config
        self.ovms_path_map = ovms_path_map
        if orphan_min_age is not None and orphan_min_age < 0:
            raise ValueError("orphan_min_age must not be negative")
        if isinstance(max_bytes, int) and max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.models = models
        self.versions = versions
        self.stale = stale
        self.foreign = foreign
        self.orphans = orphans
        self.orphan_min_age = orphan_min_age
        self.max_bytes = max_bytes
        self.plan_only = dry_run  # BaseOperator.dry_run is a method
        self.fail_on_problems = fail_on_problems

    @reporting_failures
    def execute(self, context: Context) -> dict[str, Any]:
        """Remove what the policy no longer keeps (or only plan it); the report goes to XCom, and a missed ``max_bytes`` fails the task unless ``fail_on_problems`` is off.

        :param context: the task's context.
        """
        report = self.hook.invalidate(
            models=as_names(self.models),
            versions=self.versions or None,
            stale=self.stale,
            foreign=self.foreign,
            orphans=self.orphans,
            orphan_min_age=self.orphan_min_age,
            max_bytes=self.max_bytes if self.max_bytes not in (None, "") else None,
            dry_run=self.plan_only,
            ovms_config=self.ovms_config or None,
            ovms_path_map=path_map(self.ovms_path_map),
        )
        self._log_summary(report)
        if not report.budget_met and self.fail_on_problems and not report.dry_run:
            from ..hooks.errors import ProblemsFound

            raise ProblemsFound(
                self.hook.target(", ".join(as_names(self.models) or []) or None, self.versions).with_host(report.host),
                f"the cache {report.cache_dir} still holds {human_bytes(report.bytes_after)}, over max_bytes={self.max_bytes}, after removing what the policy allows",
                "raise max_bytes or retain fewer versions; the newest version of a model is never evicted",
            )
        return report.to_xcom()

    def _log_summary(self, report: InvalidateReport) -> None:
        verb = "would remove" if report.dry_run else "removed"
        count = len(report.removals) if report.dry_run else len(report.removed)
        self.log.info(
            "invalidate on host %s (%s, policy %s)%s: %s %d blob(s), %s freed; %s -> %s",
            report.host,
            report.cache_dir,
            report.policy,
            " [dry run]" if report.dry_run else "",
            verb,
            count,
            human_bytes(report.bytes_freed),
            human_bytes(report.bytes_before),
            human_bytes(report.bytes_after),
        )
        for removal in report.removals:
            where = f"{removal.model}@{removal.version} {removal.device}" if removal.model else "(unrecorded)"
            self.log.info("  %s", printable(f"{removal.reason} {where}: {removal.blob or '-'} {human_bytes(removal.size)}"))
        for skipped in report.skipped:
            self.log.warning("  %s", printable(f"kept {skipped.get('blob')}: {skipped.get('why')}"))
