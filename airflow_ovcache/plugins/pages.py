"""The HTML pages of the OpenVINO cache view, rendered from stored report JSON only.

A report's HTML file on disk is never served: whoever can write the report
folder could put script into it. Every page is built here from the JSON, and
every value from it goes through the report's own escaping (control characters
made visible, then HTML-escaped). Pure Python; the FastAPI app calls these.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from ..core.text import printable
from ..fleet.report import OK, REPAIRED, STYLE, UNREACHABLE, UNREPAIRED, FleetReport, render_grid
from ..fleet.report_store import ReportEntry

PAGE_STYLE = STYLE + (
    "nav{margin-bottom:1em} nav a{margin-right:1em} table.index td,table.index th{text-align:left}"
    " .state-ok{color:#1b7f3b;font-weight:600} .state-bad{color:#c53030;font-weight:600} .muted{color:#718096}"
)


def esc(value: object) -> str:
    """A stored value made safe for a page: control characters made visible, then HTML-escaped.

    :param value: any value from a report's JSON.
    """
    return html.escape(printable(value))


def _page(title: str, body: str, root: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{PAGE_STYLE}</style></head><body>
<nav><a href="{esc(root)}/">All reports</a><a href="{esc(root)}/latest">Latest grid</a></nav>
{body}
</body></html>
"""


def dag_run_href(ui_base: str, dag_id: str, run_id: str) -> str:
    """The Airflow UI's page of a DAG run (``/dags/<dag>/runs/<run>``).

    :param ui_base: the path the UI is served under (see :func:`~.links.base_path`).
    :param dag_id: the DAG's id.
    :param run_id: the DAG run's id.
    """
    return f"{ui_base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in (OK, REPAIRED, UNREPAIRED, UNREACHABLE))


def index_page(entries: Sequence[ReportEntry], latest: dict[str, FleetReport], root: str, ui_base: str, location: str) -> str:
    """All reports, newest first, under the newest grid of each nightly DAG.

    :param entries: the reports the user may read, newest first.
    :param latest: the newest report of each DAG, by DAG id.
    :param root: the path the plugin's app is mounted under (its links start there).
    :param ui_base: the path the UI is served under (for links to DAG runs).
    :param location: the report folder, named when it is empty.
    """
    parts = ["<h1>OpenVINO cache: fleet reports</h1>"]
    if not entries:
        parts.append(
            f"<p>No report yet in <code>{esc(location)}</code>. The nightly DAGs write one per run; "
            "the API server must see the same report folder as the workers (OVCACHE_REPORT_DIR).</p>"
        )
        return _page("OpenVINO cache: fleet reports", "\n".join(parts), root)
    for dag_id, report in latest.items():
        parts.append(f'<section class="latest"><h2>Latest: {esc(dag_id)}</h2>{render_grid(report, heading="h3")}</section>')
    rows = []
    for e in entries:
        state = '<span class="state-ok">ok</span>' if e.ok else '<span class="state-bad">needs a person</span>'
        run = (
            f'<a target="_top" href="{esc(dag_run_href(ui_base, e.dag_id, e.run_id))}">{esc(e.dag_id)} / {esc(e.run_id)}</a>'
            if e.dag_id and e.run_id
            else '<span class="muted">(not stamped)</span>'
        )
        rows.append(
            f'<tr><td><a href="{esc(root)}/reports/{esc(quote(e.stem))}">{esc(e.generated or e.stem)}</a></td>'
            f"<td>{state}</td><td>{esc(_counts(e.counts))}</td><td>{run}</td></tr>"
        )
    parts.append(
        '<h2>All reports</h2><table class="index"><thead><tr><th>generated</th><th>state</th><th>cells</th>'
        f"<th>DAG run</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f'<p class="muted">Report folder: <code>{esc(location)}</code></p>'
    )
    return _page("OpenVINO cache: fleet reports", "\n".join(parts), root)


def report_page(stem: str, data: dict[str, Any], root: str, ui_base: str) -> str:
    """One stored report: the grid, and a link back to the DAG run that wrote it.

    :param stem: the report's name in the report folder.
    :param data: the report's stored JSON.
    :param root: the path the plugin's app is mounted under.
    :param ui_base: the path the UI is served under (for the link to the DAG run).
    """
    report = FleetReport.from_json(data)
    run = report.run or {}
    back = ""
    if run.get("dag_id") and run.get("run_id"):
        back = (
            f'<p><a target="_top" href="{esc(dag_run_href(ui_base, str(run["dag_id"]), str(run["run_id"])))}">'
            "Open this DAG run in Airflow</a></p>"
        )
    return _page(report.title, f'{render_grid(report)}{back}<p class="muted">Report {esc(stem)}</p>', root)


def missing_page(what: str, root: str) -> str:
    """The page for a report that is not there (a 404), saying what was looked for.

    :param what: the sentence saying what is missing and why it may be.
    :param root: the path the plugin's app is mounted under.
    """
    return _page("OpenVINO cache: no such report", f"<h1>No report</h1><p>{esc(what)}</p>", root)
