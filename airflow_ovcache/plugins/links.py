"""The "Fleet report" button on a nightly run's report task: from the DAG run to its report in the UI.

An Airflow 3 operator extra link is worked out by the worker when the task ends
(also when it fails, which is when on-call needs it) and stored in XCom; the UI
shows it as a button on the task instance. The link names the run, not a file:
the plugin finds the run's report by the DAG id and run id stamped inside it, so
the link is right wherever the report folder is.

Imported by DAG files: only the Task SDK's link base class, nothing heavy.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlparse

from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/ovcache"


def base_path() -> str:
    """The path Airflow's UI is served under (``[api] base_url``), without a trailing slash."""
    from airflow.sdk.configuration import conf

    base = conf.get("api", "base_url", fallback="/") or "/"
    path = urlparse(base).path if base.startswith(("http://", "https://")) else base
    return path.rstrip("/")


def run_report_path(dag_id: str, run_id: str) -> str:
    """The plugin page of one DAG run's report, relative to the UI's origin.

    :param dag_id: the DAG's id.
    :param run_id: the DAG run's id.
    """
    return f"{base_path()}{URL_PREFIX}/runs/{quote(dag_id, safe='')}/{quote(run_id, safe='')}"


class FleetReportLink(BaseOperatorLink):
    """Links a report task instance to its run's fleet report in the OpenVINO cache view."""

    name = "Fleet report"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The report page of the task instance's DAG run.

        :param operator: the report task's operator (not needed: the run names the report).
        :param ti_key: the task instance's key (its DAG id and run id).
        """
        return run_report_path(ti_key.dag_id, ti_key.run_id)


def with_report_link(task_output: Any) -> Any:
    """Give a ``@task``'s operator the "Fleet report" button; returns ``task_output`` for chaining.

    A decorated task's operator class has no extra links of its own, and
    ``@task`` takes none as an argument; an operator's links may be set on the
    instance, which is what the serializer and the worker read.

    :param task_output: what calling the ``@task`` function returned (or its operator).
    """
    operator = getattr(task_output, "operator", task_output)
    operator.operator_extra_links = (*tuple(getattr(operator, "operator_extra_links", ()) or ()), FleetReportLink())
    return task_output
