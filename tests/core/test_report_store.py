"""Report names, the DAG-run stamp, and reading a report folder (local or through ObjectStoragePath)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from airflow_ovcache.fleet.report import FleetReport, build_report, write_report
from airflow_ovcache.fleet.report_store import ReportNotFound, ReportStore, run_stamp, stem_for_run, valid_stem

RESULTS = [
    {
        "host": "h1",
        "found": [{"model": "m", "version": 1, "device": "CPU", "status": "missing", "reason": "gone"}],
        "after": [
            {"model": "m", "version": 1, "device": "CPU", "status": "ok", "size": 2048, "load_ms": 3.0, "loaded_from_cache": True}
        ],
    }
]


def _context(run_id: str, dag_id: str = "ovcache_nightly_verify", when: datetime | None = None) -> dict:  # type: ignore[type-arg]
    dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, run_type="manual", run_after=when, start_date=None)
    return {"dag_run": dag_run, "run_id": run_id, "logical_date": None, "ti": SimpleNamespace(dag_id=dag_id, task_id="report")}


def test_a_manual_run_id_gives_a_safe_unique_sortable_name() -> None:
    when = datetime(2026, 12, 2, 8, 10, 0, tzinfo=timezone.utc)
    a = stem_for_run("nightly", run_stamp(_context("manual__2026-12-02T08:10:00.123+00:00", when=when)))
    b = stem_for_run("nightly", run_stamp(_context("manual__2026-12-02T08:10:00.456+00:00", when=when)))
    assert a.startswith("nightly-20261202T081000-manual-") and valid_stem(a)
    assert a != b, "two runs in the same second keep their own report"
    assert not set(a) & set(":+/ ")


def test_report_is_stamped_with_its_run_and_round_trips(tmp_path: Path) -> None:
    report = build_report(RESULTS)
    report.run = run_stamp(_context("manual__x:y+z"))
    paths = write_report(report, tmp_path, stem_for_run("nightly", report.run))
    data = json.loads(Path(paths["json"]).read_text())
    assert data["run"]["dag_id"] == "ovcache_nightly_verify" and data["run"]["run_id"] == "manual__x:y+z"
    assert data["cells"][0]["loaded_from_cache"] is True
    page = Path(paths["html"]).read_text()
    assert "manual__x:y+z" in page and "served from cache" in page
    again = FleetReport.from_json(data)
    assert again.to_json() == data
    assert not list(tmp_path.glob(".*.tmp")), "written through a temporary file, renamed whole"


def test_unsafe_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="safe file name"):
        write_report(build_report(RESULTS), tmp_path, "nightly-manual__2026-12-02T08:10:00+00:00")
    store = ReportStore(tmp_path)
    for stem in ("../etc/passwd", "a/b", "..", ".hidden", ""):
        with pytest.raises(ReportNotFound):
            store.load(stem)


def test_store_lists_newest_first_skips_latest_and_junk_and_finds_a_run(tmp_path: Path) -> None:
    for i, run_id in enumerate(["scheduled__1", "scheduled__2"]):
        report = build_report(RESULTS)
        report.generated = f"2026-12-0{i + 1}T02:30:00+00:00"
        report.run = run_stamp(_context(run_id))
        write_report(report, tmp_path, stem_for_run("nightly", report.run))
        write_report(report, tmp_path, "latest")
    (tmp_path / "broken-1.json").write_text("{not json")
    (tmp_path / "notes.json").write_text('["not a report"]')
    store = ReportStore(tmp_path)
    entries = store.entries()
    assert [e.run_id for e in entries] == ["scheduled__2", "scheduled__1"]
    assert entries[0].counts["repaired"] == 1
    assert store.for_run("ovcache_nightly_verify", "scheduled__1") == entries[1].stem
    assert store.for_run("ovcache_nightly_verify", "nope") is None
    latest = store.latest()
    assert latest is not None and latest[1]["run"]["run_id"] == "scheduled__2"


def test_object_storage_url_is_written_and_read_through_object_storage_path(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/bucket/reports"
    report = build_report(RESULTS)
    report.run = run_stamp(_context("manual__2026-12-02T08:10:00+00:00"))
    paths = write_report(report, url, stem_for_run("nightly", report.run))
    assert paths["json"].startswith("file://")
    assert (tmp_path / "bucket" / "reports" / Path(paths["json"]).name).is_file()
    store = ReportStore(url)
    (entry,) = store.entries()
    assert entry.run_id == "manual__2026-12-02T08:10:00+00:00"
    assert store.load(entry.stem)["hosts"] == ["h1"]
    assert ReportStore(f"file://{tmp_path}/absent").entries() == []
