"""``ovcache release``: the whole per-host sequence in one agent process, on real OpenVINO compiles."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from airflow_ovcache.protocol import ReleaseStep
from tests.cli.test_cli import check_envelope, one_line_error
from tests.conftest import blobs_in, ovcache

STEPS = [step.value for step in ReleaseStep]


def release(repo: Path, cache_dir: Path, *extra: str, version: str = "2") -> list[str]:
    return ["release", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--version", version, *extra]


def steps(doc: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(s["step"], s["status"]) for s in doc["result"]["steps"]]


def test_every_step_runs_in_order_and_keeps_its_own_result(repo: Path, cache_dir: Path) -> None:
    """Version 1 is live; releasing 2 warms and proves it, and only then retires 1 (retain latest:1)."""
    check_envelope(ovcache(*release(repo, cache_dir, version="1"), "--json"), "release", 0)
    run = ovcache(*release(repo, cache_dir, "--retain", "latest:1", "--device", "CPU", "--json"), env={"OVCACHE_HOST": "h9"})
    doc = check_envelope(run, "release", 0)  # the envelope, and each step's result, by the schema
    result = doc["result"]
    assert doc["host"] == "h9" and result["ok"] is True and result["failed_step"] is None
    assert (result["model"], result["version"]) == ("mlp", 2)
    assert steps(doc) == [(step, "ok") for step in STEPS]
    by_step = {s["step"]: s for s in result["steps"]}
    assert by_step["version"]["result"]["versions"] == [1, 2]
    assert [d["name"] for d in by_step["devices"]["result"]["devices"]] == ["CPU"]
    (item,) = by_step["warm"]["result"]["items"]
    assert (item["version"], item["status"], item["loaded_from_cache"]) == (2, "warmed", True)  # confirmed, as the DAG warms
    assert by_step["verify"]["result"]["summary"] == {"ok": 1}
    (entry,) = by_step["verify"]["result"]["entries"]
    assert (entry["version"], entry["loaded_from_cache"]) == (2, True)  # the verify step load-checks the new entry only
    removals = by_step["invalidate"]["result"]["plan"]["removals"]
    assert [(r["model"], r["version"], r["reason"]) for r in removals] == [("mlp", 1, "retired")]
    assert all(s["exit_code"] == 0 and s["error"] is None and s["summary"] for s in result["steps"])
    assert "1 warmed" in by_step["warm"]["summary"] and "removed 1 blob" in by_step["invalidate"]["summary"]
    assert len(blobs_in(cache_dir)) == 1
    assert "step invalidate: ok" in run.stderr  # progress per step on stderr, stdout stays JSON


def test_a_missing_version_stops_the_release_before_anything_is_touched(repo: Path, cache_dir: Path) -> None:
    run = ovcache(*release(repo, cache_dir, version="7"), "--json")
    doc = check_envelope(run, "release", 2)
    assert doc["error"] is None  # the release ran; its failed step says why
    assert doc["result"]["failed_step"] == "version"
    assert steps(doc) == [("version", "failed"), *[(step, "not-run") for step in STEPS[1:]]]
    failed = doc["result"]["steps"][0]
    assert failed["error"]["code"] == "model-not-found" and failed["result"] is None
    assert "version 7 of model mlp" in failed["summary"] and "versions there: 1, 2" in failed["summary"]
    assert all(s["summary"] == "not run: step version failed" for s in doc["result"]["steps"][1:])
    assert "model mlp, version 7" in one_line_error(run)
    assert not cache_dir.exists()


def test_a_failing_warm_is_named_and_verify_and_invalidate_do_not_run(repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache-file"
    cache.write_text("not a directory")
    doc = check_envelope(ovcache(*release(repo, cache, "--retain", "latest:1"), "--json"), "release", 2)
    assert doc["result"]["failed_step"] == "warm"
    assert steps(doc) == [
        ("version", "ok"),
        ("devices", "ok"),
        ("warm", "failed"),
        ("verify", "not-run"),
        ("invalidate", "not-run"),
    ]
    warm = doc["result"]["steps"][2]
    assert warm["error"]["code"] == "cache-dir" and "is a file" in warm["summary"]
    assert warm["error"]["model"] == "mlp" and warm["error"]["version"] == 2
    assert cache.read_text() == "not a directory"


def test_an_unknown_device_fails_the_devices_step(repo: Path, cache_dir: Path) -> None:
    doc = check_envelope(ovcache(*release(repo, cache_dir, "--device", "NOSUCH"), "--json"), "release", 2)
    assert doc["result"]["failed_step"] == "devices"
    assert doc["result"]["steps"][1]["error"]["code"] == "unknown-device"
    assert [s["status"] for s in doc["result"]["steps"][2:]] == ["not-run"] * 3
    assert not cache_dir.exists()


def test_a_bounded_wait_sees_a_version_that_lands_late(repo: Path, cache_dir: Path) -> None:
    late = repo.parent / "late"
    shutil.move(repo / "mlp" / "2", late)

    def land() -> None:
        time.sleep(1.5)
        shutil.move(late, repo / "mlp" / "2")

    thread = threading.Thread(target=land)
    thread.start()
    try:
        doc = check_envelope(ovcache(*release(repo, cache_dir, "--wait", "30"), "--json"), "release", 0)
    finally:
        thread.join()
    assert doc["result"]["steps"][0]["result"]["waited_seconds"] >= 1.0


def test_a_person_gets_one_line_per_step(repo: Path, cache_dir: Path) -> None:
    run = ovcache(*release(repo, cache_dir))
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("release mlp@2 step")]
    assert [line.split()[3].rstrip(":") for line in lines] == STEPS
