"""The ``ovcache`` command end to end: tables, JSON envelope, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import Run, blobs_in, ovcache

SCHEMA = json.loads((Path(__file__).parents[2] / "airflow_ovcache" / "cli" / "agent-schema.json").read_text())


def check_envelope(run: Run, command: str, exit_code: int) -> dict:  # type: ignore[type-arg]
    assert run.returncode == exit_code, run.stderr
    doc = run.json
    jsonschema.validate(doc, SCHEMA)
    assert doc["command"] == command and doc["exit_code"] == exit_code and doc["ok"] is (exit_code == 0)
    return doc


def one_line_error(run: Run) -> str:
    lines = [line for line in run.stderr.splitlines() if line.startswith("ovcache: error:")]
    assert lines, run.stderr
    return lines[-1]


def test_warm_verify_status_invalidate_round(repo: Path, cache_dir: Path) -> None:
    env = {"OVCACHE_HOST": "infer-01"}
    warm = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--versions", "all", "--confirm", "--json", env=env
    )
    doc = check_envelope(warm, "warm", 0)
    assert doc["host"] == "infer-01"
    assert doc["result"]["summary"] == {"warmed": 3, "unchanged": 0, "skipped": 0, "failed": 0}
    assert all(item["loaded_from_cache"] for item in doc["result"]["items"])
    assert "[3/3]" in warm.stderr  # progress reaches stderr, stdout stays JSON

    again = check_envelope(
        ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--versions", "all", "--json"), "warm", 0
    )
    assert again["result"]["summary"]["unchanged"] == 3

    verify = check_envelope(ovcache("verify", "--cache-dir", str(cache_dir), "--load-check", "--json"), "verify", 0)
    assert verify["result"]["summary"] == {"ok": 3} and verify["result"]["problems"] == 0

    status = check_envelope(ovcache("status", "--cache-dir", str(cache_dir), "--json"), "status", 0)
    assert status["result"]["blob_count"] == 3 and status["result"]["missing"] == 0

    dry = check_envelope(
        ovcache("invalidate", "--cache-dir", str(cache_dir), "--versions", "latest:1", "--dry-run", "--json"), "invalidate", 0
    )
    assert [(r["model"], r["version"]) for r in dry["result"]["plan"]["removals"]] == [("mlp", 1)]
    assert dry["result"]["applied"] is None and len(blobs_in(cache_dir)) == 3
    real = check_envelope(
        ovcache("invalidate", "--cache-dir", str(cache_dir), "--versions", "latest:1", "--json"), "invalidate", 0
    )
    assert real["result"]["applied"]["bytes_freed"] == dry["result"]["plan"]["bytes_freed"] > 0
    assert len(blobs_in(cache_dir)) == 2


def test_tables_for_people(repo: Path, cache_dir: Path) -> None:
    warm = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp")
    assert warm.returncode == 0
    assert "mlp" in warm.stdout and "warmed" in warm.stdout and "warmed: 1" in warm.stdout
    verify = ovcache("verify", "--cache-dir", str(cache_dir))
    assert verify.returncode == 0 and "ok: 1" in verify.stdout
    dry = ovcache("invalidate", "--cache-dir", str(cache_dir), "--versions", "latest:1", "--dry-run")
    assert "would free" in dry.stdout


def test_devices_models_version(repo: Path) -> None:
    devices = check_envelope(ovcache("devices", "--json"), "devices", 0)
    cpu = next(d for d in devices["result"]["devices"] if d["name"] == "CPU")
    assert cpu["can_cache"] and "EXPORT_IMPORT" in cpu["capabilities"]
    models = check_envelope(ovcache("models", "--repository", str(repo), "--versions", "latest", "--json"), "models", 0)
    assert {m["name"]: m["selected"] for m in models["result"]["models"]} == {"mlp": [2], "tiny": [1]}
    version = check_envelope(ovcache("version", "--json"), "version", 0)
    assert version["result"]["schema_version"] == 2 and version["result"]["openvino"]


def test_verify_finds_problems_exit_1(repo: Path, cache_dir: Path) -> None:
    ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp")
    (blob,) = blobs_in(cache_dir)
    os.chmod(blob, 0o640)
    os.truncate(blob, 1000)
    doc = check_envelope(ovcache("verify", "--cache-dir", str(cache_dir), "--json"), "verify", 1)
    assert doc["result"]["summary"] == {"corrupt": 1}


# -- bad input: one line, non-zero, nothing lost --------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["--repository", "{tmp}/nowhere"], "model-not-found", "does not exist"),
        (["--repository", "{repo}", "--model", "../etc"], "invalid-name", "not a plain name"),
        (["--repository", "{repo}", "--model", "ghost"], "model-not-found", "model ghost"),
        (["--repository", "{repo}", "--model", "mlp", "--versions", "newest"], "usage", "unknown version policy"),
        (["--repository", "{repo}", "--model", "mlp", "--device", "XPU"], "unknown-device", "device XPU"),
        (["--repository", "{repo}", "--model", "mlp", "--property", "BOGUS=1"], "unknown-property", "BOGUS"),
        (["--repository", "{repo}", "--model", "mlp", "--property", "CACHE_DIR=/x"], "usage", "set by ovcache itself"),
    ],
)
def test_bad_warm_input(repo: Path, cache_dir: Path, tmp_path: Path, args: list[str], code: str, needle: str) -> None:
    argv = [a.format(tmp=tmp_path, repo=repo) for a in args]
    run = ovcache("warm", *argv, "--cache-dir", str(cache_dir), "--json", env={"OVCACHE_HOST": "infer-07"})
    doc = check_envelope(run, "warm", 2)
    error = doc["error"] or next(i["error"] for i in doc["result"]["items"] if i["error"])
    assert error["code"] == code and error["host"] == "infer-07"
    line = one_line_error(run)
    assert needle in line and "host infer-07" in line


def test_failed_warm_names_host_model_version_device(repo: Path, cache_dir: Path) -> None:
    run = ovcache(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
        "--model",
        "mlp",
        "--device",
        "XPU",
        env={"OVCACHE_HOST": "h3"},
    )
    assert run.returncode == 2
    line = one_line_error(run)
    for part in ("host h3", "model mlp", "version 2", "device XPU"):
        assert part in line


def test_model_openvino_cannot_convert(repo: Path, cache_dir: Path) -> None:
    (repo / "junk" / "1").mkdir(parents=True)
    (repo / "junk" / "1" / "model.onnx").write_bytes(b"\x08\x01garbage" * 50)
    run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "junk")
    assert run.returncode == 2 and "model junk" in one_line_error(run) and "cannot read" in one_line_error(run)


def test_cache_path_that_is_a_file(repo: Path, tmp_path: Path) -> None:
    file = tmp_path / "cache"
    file.write_text("i am a file")
    run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(file), "--model", "mlp")
    assert run.returncode == 2 and "is a file" in one_line_error(run)
    assert file.read_text() == "i am a file"


def test_corrupt_manifest_is_reported_then_repaired(repo: Path, cache_dir: Path) -> None:
    ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp")
    blob_names = {p.name for p in blobs_in(cache_dir)}
    manifest = cache_dir / ".ovcache" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:100])
    verify = ovcache("verify", "--cache-dir", str(cache_dir), "--json")
    doc = check_envelope(verify, "verify", 2)
    assert doc["error"]["code"] == "manifest-corrupt" and "ovcache repair-manifest" in one_line_error(verify)
    repaired = check_envelope(ovcache("repair-manifest", "--cache-dir", str(cache_dir), "--json"), "repair-manifest", 0)
    assert repaired["result"]["repaired"] and Path(repaired["result"]["set_aside"]).exists()
    assert {p.name for p in blobs_in(cache_dir)} == blob_names  # no blob was touched
    warm = check_envelope(
        ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--json"), "warm", 0
    )
    assert warm["result"]["summary"]["warmed"] == 1
    assert check_envelope(ovcache("verify", "--cache-dir", str(cache_dir), "--json"), "verify", 0)["result"]["summary"] == {
        "ok": 1
    }


def test_warm_sets_a_corrupt_manifest_aside_with_a_warning(repo: Path, cache_dir: Path) -> None:
    ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp")
    (cache_dir / ".ovcache" / "manifest.json").write_text("garbage")
    doc = check_envelope(
        ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--json"), "warm", 0
    )
    assert any("set aside" in w for w in doc["result"]["warnings"])
    assert list((cache_dir / ".ovcache").glob("manifest.corrupt-*.json"))


def test_verify_of_a_missing_cache_dir(tmp_path: Path) -> None:
    run = ovcache("verify", "--cache-dir", str(tmp_path / "none"))
    assert run.returncode == 2 and "does not exist" in one_line_error(run)


def test_version_flag() -> None:
    run = ovcache("--version")
    assert run.returncode == 0 and run.stdout.startswith("ovcache ")


# -- as another user and on a full disk (root only) ----------------------------------------------


@pytest.mark.root
def test_unwritable_cache_directory_as_nobody(repo: Path) -> None:
    from tests.conftest import readable_copy, require, usable_by_others

    require(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root and runuser to run the agent as nobody")
    shared = readable_copy(repo)
    cache = shared.parent / "cache"
    assert ovcache("warm", "--repository", str(shared), "--cache-dir", str(cache), "--model", "mlp").returncode == 0
    os.chmod(cache, 0o755)
    before = {p.name: p.stat().st_mtime_ns for p in blobs_in(cache)}
    manifest_before = (cache / ".ovcache" / "manifest.json").read_bytes()
    try:
        with usable_by_others():
            run = ovcache(
                "warm", "--repository", str(shared), "--cache-dir", str(cache), "--model", "mlp", "--force", user="nobody"
            )
            # a read-only command as a user who may not read the (private) manifest says so, and changes nothing
            verify = ovcache("verify", "--cache-dir", str(cache), "--json", user="nobody")
        assert run.returncode == 2, run.stderr
        line = one_line_error(run)
        assert "not writable" in line and "uid 65534" in line and "model" not in line.split(":")[0]
        error = check_envelope(verify, "verify", 2)["error"]
        assert error["code"] == "cache-dir" and "uid 65534 may not read the manifest" in error["message"]
        assert {p.name: p.stat().st_mtime_ns for p in blobs_in(cache)} == before
        assert (cache / ".ovcache" / "manifest.json").read_bytes() == manifest_before
    finally:
        shutil.rmtree(shared.parent)


@pytest.mark.root
def test_full_disk_fails_clearly_and_loses_nothing(repo: Path, tmp_path: Path) -> None:
    import subprocess

    from tests.conftest import require

    require(os.geteuid() == 0, "mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], check=True)
    try:
        cache = mnt / "cache"
        ok = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), "--model", "tiny", "--json")
        check_envelope(ok, "warm", 0)
        kept = {p.name: p.read_bytes() for p in blobs_in(cache)}
        manifest = (cache / ".ovcache" / "manifest.json").read_bytes()
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        (mnt / "filler").write_bytes(b"\0" * max(0, free - 256 * 1024))
        run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), "--model", "mlp", "--json")
        doc = check_envelope(run, "warm", 2)
        item = doc["result"]["items"][0]
        assert item["error"]["code"] == "disk-full", item
        assert "model mlp" in one_line_error(run) and "space" in one_line_error(run)
        assert {p.name: p.read_bytes() for p in blobs_in(cache)} == kept
        assert (cache / ".ovcache" / "manifest.json").read_bytes() == manifest
        assert not any((cache / ".ovcache" / "staging").iterdir())
        assert check_envelope(ovcache("verify", "--cache-dir", str(cache), "--json"), "verify", 0)["result"]["summary"] == {
            "ok": 1
        }
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_blob_permissions_are_read_only(repo: Path, cache_dir: Path) -> None:
    ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp")
    (blob,) = blobs_in(cache_dir)
    assert not blob.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def test_rewarm_repairs_what_a_warm_can_fix_and_reports_the_rest(repo: Path, cache_dir: Path) -> None:
    from airflow_ovcache.samples import swap_weights_in_place

    ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--versions", "all")
    manifest = json.loads((cache_dir / ".ovcache" / "manifest.json").read_text())["entries"]
    by_model = {(e["model"], e["version"]): e for e in manifest.values()}
    (cache_dir / by_model[("mlp", 1)]["blob"]).unlink()  # missing
    swap_weights_in_place(repo / "mlp" / "2" / "model.bin", seed=8)  # stale
    shutil.rmtree(repo / "tiny")  # model gone: nothing to rebuild from
    run = ovcache("rewarm", "--cache-dir", str(cache_dir), "--json", env={"OVCACHE_HOST": "n1"})
    doc = check_envelope(run, "rewarm", 1)
    result = doc["result"]
    assert result["found_summary"] == {"missing": 1, "model-missing": 1, "stale-model": 1}
    assert sorted((w["model"], w["version"], w["status"]) for w in result["rewarmed"]) == [
        ("mlp", 1, "warmed"),
        ("mlp", 2, "warmed"),
    ]
    assert all(w["loaded_from_cache"] for w in result["rewarmed"])
    assert result["after_summary"] == {"model-missing": 1, "ok": 2}
    assert [(u["model"], u["status"]) for u in result["unrepaired"]] == [("tiny", "model-missing")]
    assert "ovcache: unrepaired: host n1, model tiny, version 1, device CPU: model-missing" in run.stderr
