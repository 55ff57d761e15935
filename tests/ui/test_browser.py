"""What an Airflow user sees, in a real browser against a real API server (issue 17's proof).

Playwright for Python drives Debian's ``chromium`` (Playwright's own browser
downloads fail on these machines; ``.ci/run`` installs the Debian package). The
Airflow is :class:`tests.ui.stack.UiStack`: SQLite, ``airflow api-server`` on
127.0.0.1, and DAG runs by ``airflow dags test`` against the same database. The
report folder is a ``file://`` URL, so the report task writes it, and the
plugin reads it, through ``ObjectStoragePath``.

1. a nightly run of ``ovcache_nightly_verify`` over one local host whose blob was
   deleted: the OpenVINO cache view (Browse menu) shows the repaired cell, and the
   report task's "Fleet report" link opens that run's report;
2. a mapped task with ``map_index_template``: its instances are listed by host;
3. the connection form shows the ``ovcache`` connection type's own fields.

Screenshots go to ``$OVCACHE_ARTIFACTS/ui`` (default ``/tmp/ovcache-artifacts/ui``),
never into the repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.samples import build_ir
from tests.conftest import require
from tests.ui.stack import UiStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("OVCACHE_CHROMIUM", "/usr/bin/chromium")
# As the machine's own probe starts it: no sandbox as root, and nothing that reaches for the network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("OVCACHE_ARTIFACTS", "/tmp/ovcache-artifacts")) / "ui"
HOST = "infer-01"


def _prerequisites() -> None:
    require(importlib.util.find_spec("playwright") is not None, "playwright is not installed (pip install -e '.[ui-tests]')")
    require(os.access(CHROMIUM, os.X_OK), f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    _prerequisites()
    root = tmp_path_factory.mktemp("ui")
    started = time.monotonic()
    host = root / HOST
    build_ir(host / "models" / "mlp" / "2" / "model.xml", size_mb=1.0, seed=1)
    # A warmed host whose blob then went missing: the night must rebuild it and say so.
    subprocess.run(
        [sys.executable, "-m", "airflow_ovcache.cli.main", "warm", "--cache-dir", str(host / "cache")]
        + ["--repository", str(host / "models"), "--model", "mlp"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    for blob in (host / "cache").glob("*.blob"):
        blob.unlink()
    inventory = root / "fleet.toml"
    inventory.write_text(
        f'[defaults]\nconn_id = "ovcache_local"\n\n[[hosts]]\nname = "{HOST}"\n'
        f'cache_dir = "{host / "cache"}"\nrepository = "{host / "models"}"\n'
    )
    ui = UiStack(
        root,
        [REPO / "dags" / "ovcache_nightly_verify.py", REPO / "tests" / "ui" / "dags" / "ovcache_ui_mapped.py"],
        extra_env={
            "OVCACHE_INVENTORY": str(inventory),
            "OVCACHE_REPORT_DIR": f"file://{root}/reports",
            "AIRFLOW_CONN_OVCACHE_LOCAL": json.dumps({"conn_type": "ovcache", "extra": {"transport": "local"}}),
        },
    )
    try:
        ui.prepare()
        ui.start()  # the API server comes up while the runs below are made
        ui.dags_test("ovcache_nightly_verify")
        ui.dags_test("ovcache_ui_mapped")
        ui.airflow(
            "connections",
            "add",
            "infer_ui",
            "--conn-type",
            "ovcache",
            "--conn-host",
            HOST,
            "--conn-extra",
            json.dumps({"cache_dir": str(host / "cache"), "repository": str(host / "models")}),
        )
        ui.wait_until_up()
        reports = sorted((root / "reports").glob("nightly-*.json"))
        assert len(reports) == 1, f"one nightly report expected in {root / 'reports'}: {reports}"
        report = json.loads(reports[0].read_text())
        print(f"ui tier: Airflow up with two finished runs after {time.monotonic() - started:.1f}s")
        yield {"ui": ui, "report": report, "report_file": reports[0]}
    except BaseException:
        print(ui.diagnostics())
        raise
    finally:
        ui.stop()


@pytest.fixture(scope="module")
def browser(stack: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, stack: dict[str, Any], request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 950}, base_url=stack["ui"].base_url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        yield page
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}.png"), full_page=True)
        context.close()


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def test_the_cache_view_shows_the_grid_of_a_finished_nightly_run(page: Any, stack: dict[str, Any]) -> None:
    run_id = stack["report"]["run"]["run_id"]
    assert stack["report"]["run"]["dag_id"] == "ovcache_nightly_verify"
    assert ":" not in stack["report_file"].name and "+" not in stack["report_file"].name

    # Found the way a person finds it: Browse, then "OpenVINO cache".
    page.goto("/")
    page.get_by_role("button", name="Browse").click()
    page.get_by_role("menuitem", name="OpenVINO cache").click()
    page.wait_for_url("**/plugin/ovcache**")
    view = page.frame_locator("iframe").first
    cell = view.locator("td.cell.repaired")
    cell.wait_for()
    assert "repaired (missing)" in cell.inner_text()
    assert "served from cache" in cell.inner_text(), "the night's load check was served from the cache"
    assert view.locator("table.grid th", has_text=HOST).count() == 1
    assert run_id in view.locator("body").inner_text(), "the grid names the DAG run that made it"
    page.screenshot(path=str(ARTIFACTS / "a-fleet-grid-in-airflow.png"), full_page=True)

    # From the run: the report task's "Fleet report" link opens this run's report.
    page.goto(f"/dags/ovcache_nightly_verify/runs/{_quote(run_id)}/tasks/report/details")
    link = page.get_by_role("link", name="Fleet report")
    link.wait_for()
    href = link.get_attribute("href")
    assert href == f"/ovcache/runs/ovcache_nightly_verify/{_quote(run_id)}"
    page.screenshot(path=str(ARTIFACTS / "a-fleet-report-link-on-the-report-task.png"), full_page=True)
    page.goto(href)
    assert "/ovcache/reports/nightly-" in page.url
    assert "repaired (missing)" in page.locator("td.cell.repaired").inner_text()
    page.screenshot(path=str(ARTIFACTS / "a-report-of-the-run.png"), full_page=True)


def test_mapped_task_instances_are_listed_by_host(page: Any, stack: dict[str, Any]) -> None:
    (run_id,) = stack["ui"].run_ids("ovcache_ui_mapped")
    page.goto(f"/dags/ovcache_ui_mapped/runs/{_quote(run_id)}/tasks/check/mapped")
    for host in ("infer-east-1", "infer-west-2"):
        page.get_by_role("link", name=f"host {host}").wait_for()
    assert page.get_by_role("link", name="0", exact=True).count() == 0, "instances are labelled by host, not [0]"
    page.screenshot(path=str(ARTIFACTS / "b-mapped-instances-by-host.png"), full_page=True)


def test_the_connection_form_shows_the_providers_fields(page: Any, stack: dict[str, Any]) -> None:
    from airflow_ovcache.get_provider_info import CONN_FIELDS

    # A new connection: pick the type, and every field the provider declares is on the form.
    page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill("infer_new")
    dialog.get_by_role("combobox", name="Connection Type").fill("OpenVINO cache host")
    page.keyboard.press("Enter")
    dialog.get_by_text("Extra Fields", exact=True).click()
    for field in CONN_FIELDS.values():
        dialog.get_by_text(field["label"], exact=True).wait_for()
    assert "OpenVINO cache_dir on the host" in dialog.inner_text()
    dialog.screenshot(path=str(ARTIFACTS / "c-connection-form-new.png"))
    dialog.get_by_role("button", name="Close").click()

    # A saved one: its values sit in the provider's fields.
    row = page.locator("tr", has_text="infer_ui")
    row.get_by_label("Edit Connection").click()
    dialog = page.get_by_role("dialog")
    assert "OpenVINO cache host" in dialog.inner_text()
    dialog.get_by_text("Extra Fields", exact=True).click()
    for label in ("Cache directory", "Model repository"):
        dialog.get_by_text(label, exact=True).wait_for()
    assert dialog.locator("input[value$='/infer-01/cache']").count() == 1
    dialog.screenshot(path=str(ARTIFACTS / "c-connection-form-saved.png"))


def teardown_module() -> None:
    # Nothing of the tier stays in the repository; the screenshots are CI artifacts.
    shutil.rmtree(REPO / "test-results", ignore_errors=True)
