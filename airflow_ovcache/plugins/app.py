"""The FastAPI app the Airflow API server mounts at ``/ovcache``: the fleet reports, behind Airflow's login.

Routes (HTML unless said):

- ``/``: the newest grid of each nightly DAG, then every report, newest first;
- ``/latest``: the newest report of any nightly DAG;
- ``/reports/<name>``: one report, rendered from its JSON;
- ``/runs/<dag_id>/<run_id>``: the report of one DAG run (what the "Fleet report" button opens);
- ``/api/reports`` and ``/api/reports/<name>``: the same as JSON.

Every route needs an Airflow user (the UI's session cookie or a bearer token,
checked by Airflow's own dependency), and a report is shown only to a user who
may read runs of the DAG stamped in it. The report folder is read on each
request from ``$OVCACHE_REPORT_DIR`` (see :mod:`airflow_ovcache.fleet.report_store`).

No ``from __future__ import annotations`` here: FastAPI reads the route
functions' annotations at run time.
"""

import os
from collections.abc import Callable
from typing import Any

from ..fleet.report import FleetReport
from ..fleet.report_store import ReportEntry, ReportNotFound, ReportStore
from ..fleet.runs import report_dir
from . import pages
from .links import base_path


def create_app(
    location: "str | os.PathLike[str] | None" = None, authorize: "Callable[[Any, str | None], bool] | None" = None
) -> Any:
    """The plugin's app: the report pages and their JSON, each behind Airflow's login and DAG permissions.

    :param location: the report folder; default: read per request (``report_dir()``).
    :param authorize: ``(user, dag_id) -> bool``, whether the user may read that DAG's runs;
        default: Airflow's auth manager. A seam for tests without an API server.
    """
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, RedirectResponse

    current_user = Depends(get_user)  # Airflow's own check: session cookie or bearer token
    app = FastAPI(title="OpenVINO cache fleet reports", docs_url=None, redoc_url=None, openapi_url=None)

    def store() -> ReportStore:
        return ReportStore(location if location is not None else report_dir())

    def may_read(user: Any, dag_id: str | None) -> bool:
        if authorize is not None:
            return authorize(user, dag_id)
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        return bool(
            get_auth_manager().is_authorized_dag(
                method="GET", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id), user=user
            )
        )

    def root(request: Request) -> str:
        return str(request.scope.get("root_path") or "").rstrip("/")

    def readable(user: Any, reports: ReportStore) -> list[ReportEntry]:
        return [e for e in reports.entries() if may_read(user, e.dag_id)]

    def load(user: Any, reports: ReportStore, stem: str) -> dict[str, Any]:
        try:
            data = reports.load(stem)
        except ReportNotFound:
            raise HTTPException(404, f"no report {stem!r} in the report folder") from None
        run: dict[str, Any] = data["run"] if isinstance(data.get("run"), dict) else {}
        if not may_read(user, run.get("dag_id") or None):
            raise HTTPException(403, "you may not read runs of the DAG that wrote this report")
        return data

    def latest_by_dag(reports: ReportStore, entries: list[ReportEntry]) -> dict[str, FleetReport]:
        latest: dict[str, FleetReport] = {}
        for entry in entries:  # newest first
            key = entry.dag_id or "(not stamped)"
            if key not in latest:
                try:
                    latest[key] = FleetReport.from_json(reports.load(entry.stem))
                except ReportNotFound:
                    continue
        return latest

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, user: Any = current_user) -> HTMLResponse:
        reports = store()
        entries = readable(user, reports)
        return HTMLResponse(
            pages.index_page(entries, latest_by_dag(reports, entries), root(request), base_path(), reports.location)
        )

    @app.get("/latest", response_class=HTMLResponse, response_model=None)
    def latest(request: Request, user: Any = current_user) -> Any:
        reports = store()
        entries = readable(user, reports)
        if not entries:
            return HTMLResponse(pages.missing_page("No nightly run has written a report yet.", root(request)), status_code=404)
        return RedirectResponse(f"{root(request)}/reports/{entries[0].stem}", status_code=303)

    @app.get("/reports/{stem}", response_class=HTMLResponse)
    def report(stem: str, request: Request, user: Any = current_user) -> HTMLResponse:
        return HTMLResponse(pages.report_page(stem, load(user, store(), stem), root(request), base_path()))

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, response_model=None)
    def run_report(dag_id: str, run_id: str, request: Request, user: Any = current_user) -> Any:
        if not may_read(user, dag_id):
            raise HTTPException(403, f"you may not read runs of DAG {dag_id!r}")
        stem = store().for_run(dag_id, run_id)
        if stem is None:
            what = f"DAG run {dag_id} / {run_id} has not written a report (yet): its report task may not have run."
            return HTMLResponse(pages.missing_page(what, root(request)), status_code=404)
        return RedirectResponse(f"{root(request)}/reports/{stem}", status_code=303)

    @app.get("/api/reports")
    def api_reports(user: Any = current_user) -> dict[str, Any]:
        reports = store()
        return {"location": reports.location, "reports": [e.__dict__ for e in readable(user, reports)]}

    @app.get("/api/reports/{stem}")
    def api_report(stem: str, user: Any = current_user) -> dict[str, Any]:
        return load(user, store(), stem)

    return app
