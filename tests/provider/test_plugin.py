"""The UI plugin's app and registration, without an API server (tests/ui drives a real one in a browser)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_ovcache.fleet.report import build_report, write_report
from airflow_ovcache.fleet.report_store import run_stamp, stem_for_run
from tests.dags.conftest import example_dags  # noqa: F401 - fixture

HOSTILE = "<script>alert(1)</script>"


def _write(
    folder: Path,
    run_id: str,
    dag_id: str = "ovcache_nightly_verify",
    model: str = "mlp",
    generated: str = "2026-12-02T02:31:00+00:00",
) -> str:
    results = [
        {
            "host": "infer-01",
            "found": [{"model": model, "version": 2, "device": "CPU", "status": "missing", "reason": "blob gone"}],
            "after": [{"model": model, "version": 2, "device": "CPU", "status": "ok", "size": 4096, "load_ms": 5.0}],
        },
        {"host": "infer-02", "error": "ssh: connection refused"},
    ]
    report = build_report(results)
    report.generated = generated
    report.run = run_stamp(
        {"dag_run": SimpleNamespace(dag_id=dag_id, run_id=run_id, run_type="manual", run_after=None), "run_id": run_id}
    )
    stem = stem_for_run("nightly", report.run)
    write_report(report, folder, stem)
    return stem


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from airflow_ovcache.plugins.app import create_app

    app = create_app(tmp_path, authorize=lambda user, dag_id: dag_id != "secret_dag")
    app.dependency_overrides[get_user] = lambda: SimpleNamespace(name="tester")
    with TestClient(app, root_path="/ovcache") as c:
        c.folder = tmp_path  # type: ignore[attr-defined]
        yield c


def test_index_shows_the_latest_grid_and_every_report_newest_first(client) -> None:  # type: ignore[no-untyped-def]
    first = _write(client.folder, "manual__2026-12-01T02:30:00+00:00", generated="2026-12-01T02:31:00+00:00")
    second = _write(client.folder, "manual__2026-12-02T02:30:00+00:00", model="tiny")
    page = client.get("/").text
    assert "Latest: ovcache_nightly_verify" in page
    assert page.index("tiny") < page.index("<h2>All reports"), "the newest grid is on top"
    assert f"/ovcache/reports/{first}" in page and f"/ovcache/reports/{second}" in page
    assert "/dags/ovcache_nightly_verify/runs/manual__2026-12-02T02%3A30%3A00%2B00%3A00" in page


def test_a_run_link_leads_to_its_report_and_a_missing_one_says_so(client) -> None:  # type: ignore[no-untyped-def]
    stem = _write(client.folder, "scheduled__2026-12-02T02:30:00+00:00")
    got = client.get("/runs/ovcache_nightly_verify/scheduled__2026-12-02T02%3A30%3A00%2B00%3A00", follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == f"/ovcache/reports/{stem}"
    page = client.get(got.headers["location"]).text
    assert "repaired (missing)" in page and "unreachable" in page and "scheduled__2026-12-02T02:30:00+00:00" in page
    missing = client.get("/runs/ovcache_nightly_verify/manual__none")
    assert missing.status_code == 404 and "has not written a report" in missing.text
    assert client.get("/latest", follow_redirects=False).headers["location"] == f"/ovcache/reports/{stem}"


def test_values_from_the_report_are_escaped_and_the_html_file_is_never_served(client) -> None:  # type: ignore[no-untyped-def]
    stem = _write(client.folder, "manual__x", model=HOSTILE)
    (client.folder / f"{stem}.html").write_text(f"<html>{HOSTILE}</html>")
    for path in ("/", f"/reports/{stem}"):
        page = client.get(path).text
        assert HOSTILE not in page and "&lt;script&gt;" in page
    assert client.get("/reports/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_reports_of_dags_the_user_may_not_read_are_hidden(client) -> None:  # type: ignore[no-untyped-def]
    hidden = _write(client.folder, "manual__a", dag_id="secret_dag")
    shown = _write(client.folder, "manual__b", generated="2026-12-01T02:31:00+00:00")
    listed = [r["stem"] for r in client.get("/api/reports").json()["reports"]]
    assert listed == [shown]
    assert client.get(f"/reports/{hidden}").status_code == 403
    assert client.get(f"/api/reports/{shown}").json()["run"]["run_id"] == "manual__b"


def test_plugin_is_registered_once_and_cheap_to_import(airflow_db: Path, tmp_path: Path) -> None:
    from importlib.metadata import entry_points

    from airflow_ovcache.get_provider_info import get_provider_info

    (ep,) = [e for e in entry_points(group="airflow.plugins") if e.name == "ovcache"]
    assert ep.value == "airflow_ovcache.plugins.fleet_view:OvcacheFleetPlugin"
    assert "plugins" not in get_provider_info(), "a second registration is reported as an import error"
    probe = (
        "import sys, airflow.sdk; from airflow_ovcache.plugins.fleet_view import OvcacheFleetPlugin as P;"
        "heavy = [m for m in ('airflow_ovcache.plugins.app', 'openvino') if m in sys.modules];"
        "print('HEAVY', heavy); apps = P.fastapi_apps; print('APP', apps[0]['url_prefix'], P.external_views[0]['url_route'])"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.splitlines()
    assert "HEAVY []" in out, "importing the plugin builds no app and loads no OpenVINO"
    assert "APP /ovcache ovcache" in out

    # Loaded by Airflow's plugins manager, once, with provider discovery lazy (the default) or not.
    # Only errors about our plugin count: another provider's (edge3 registers its own plugin both
    # by entry point and in its provider info, which Airflow reports as "already registered") is not ours.
    listing = (
        "from airflow import plugins_manager as m; p, e = m._get_plugins();"
        "print('PLUGINS', [x.name for x in p].count('ovcache'), {k: v for k, v in e.items() if 'ovcache' in (k + str(v))})"
    )
    for lazy in ("True", "False"):
        env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LAZY_DISCOVER_PROVIDERS": lazy}
        got = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, check=True, env=env)
        assert "PLUGINS 1 {}" in got.stdout.splitlines(), (lazy, got.stdout[-500:])


def test_report_task_carries_the_fleet_report_link(example_dags: Path) -> None:  # noqa: F811
    from airflow_ovcache.plugins.links import FleetReportLink
    from tests.provider.conftest import load_dag

    dag = load_dag("ovcache_nightly_verify", "nightly_verify")
    (link,) = [lk for lk in dag.task_dict["report"].operator_extra_links if isinstance(lk, FleetReportLink)]
    url = link.get_link(dag.task_dict["report"], ti_key=SimpleNamespace(dag_id="d", run_id="manual__1+00:00"))
    assert url == "/ovcache/runs/d/manual__1%2B00%3A00"
