"""Regressions for the defects adversarial testing found (issue 10), each with the class of bug behind it.

Every test here failed on the code before the fix: a symlinked ``.ovcache``
path steering a deletion out of the cache, a deleted lock letting a second
writer in, a cache inside the repository, control characters forging log
lines, a verify racing a release, invalidation on a full disk, and one bad
version folder keeping the whole host cold. Real agent processes, real
compiles, real files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.errors import LockTimeout, UnsafeCacheDir
from airflow_ovcache.core.manifest import Manifest
from tests.conftest import blobs_in, ovcache, require


def _warm(repo: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "airflow_ovcache.cli.main", "warm", "--repository", str(repo), "--cache-dir", str(cache)]
    return subprocess.run([*cmd, *extra], capture_output=True, text=True, timeout=300)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ovcache: error:")]


def _bait(tmp_path: Path) -> Path:
    """A folder outside the cache that looks like staging leftovers: what the agent must never delete."""
    bait = tmp_path / "precious"
    (bait / "x").mkdir(parents=True)
    (bait / "x" / "data.txt").write_text("keep me")
    (bait / "x.lock").write_text("")
    return bait


def _bait_intact(bait: Path) -> bool:
    return (bait / "x" / "data.txt").read_text() == "keep me" and (bait / "x.lock").exists()


# -- 1. nothing under .ovcache/ is followed through a link --------------------------------------


def test_symlinked_staging_is_refused_and_nothing_outside_is_deleted(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    assert _warm(repo, cache_dir, "--model", "mlp").returncode == 0
    bait = _bait(tmp_path)
    staging = cache_dir / ".ovcache" / "staging"
    shutil.rmtree(staging)
    staging.symlink_to(bait)
    run = _warm(repo, cache_dir, "--model", "mlp", "--force")
    assert run.returncode == 2
    (line,) = _error_lines(run.stderr)
    assert "staging is a symbolic link" in line and "nothing was created or deleted" in line
    assert _bait_intact(bait)
    # a reader is told too: a state folder someone tampered with is not a cache to vouch for
    verify = ovcache("verify", "--cache-dir", str(cache_dir))
    assert verify.returncode == 2 and "staging is a symbolic link" in _error_lines(verify.stderr)[0]
    assert _bait_intact(bait)


@pytest.mark.parametrize("which", ["locks", "manifest.json", "host.json", "fingerprints.json", "reserve"])
def test_every_state_path_is_checked_for_links(repo: Path, cache_dir: Path, tmp_path: Path, which: str) -> None:
    assert _warm(repo, cache_dir, "--model", "mlp").returncode == 0
    path = cache_dir / ".ovcache" / which
    target = tmp_path / f"elsewhere-{which}"
    if path.is_dir():
        shutil.copytree(path, target)
        shutil.rmtree(path)
    else:
        if path.exists():
            shutil.copy2(path, target)
            path.unlink()
        else:
            target.write_text("{}")
    path.symlink_to(target)
    run = _warm(repo, cache_dir, "--model", "mlp", "--force")
    assert run.returncode == 2 and "is a symbolic link" in _error_lines(run.stderr)[0]
    assert target.exists()


def test_a_link_left_inside_staging_is_refused(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    assert _warm(repo, cache_dir, "--model", "mlp").returncode == 0
    bait = _bait(tmp_path)
    staging = cache_dir / ".ovcache" / "staging"
    (staging / "x").symlink_to(bait / "x")
    (staging / "x.lock").write_text("")
    run = _warm(repo, cache_dir, "--model", "mlp", "--force")
    assert run.returncode == 2 and "x is a symbolic link" in _error_lines(run.stderr)[0]
    assert _bait_intact(bait)


def test_cleanup_never_follows_a_link_swapped_in_after_the_check(cache_dir: Path, tmp_path: Path) -> None:
    """The race behind the check: staging (or a leftover inside it) becomes a link after ``check_layout``."""
    cache = CacheDir(cache_dir).check(create=True, writable=True)
    bait = _bait(tmp_path)
    # a leftover whose folder holds a link deep inside: the link goes, its target stays
    leftover = cache.staging_root / "dead-1"
    leftover.mkdir()
    (leftover / "inner").symlink_to(bait)
    (cache.staging_root / "dead-1.lock").write_text("")
    assert cache.clean_stale_staging() == 1
    assert not leftover.exists() and _bait_intact(bait)
    # staging itself swapped for a link: refused at the descriptor, nothing followed
    shutil.rmtree(cache.staging_root)
    cache.staging_root.symlink_to(bait)
    with pytest.raises(UnsafeCacheDir):
        cache.clean_stale_staging()
    with pytest.raises(UnsafeCacheDir), cache.staging():
        pass
    assert _bait_intact(bait)


@pytest.mark.root
def test_state_owned_by_another_user_is_refused_for_writing(repo: Path, cache_dir: Path) -> None:
    require(os.geteuid() == 0, "changing a folder's owner needs root")
    assert _warm(repo, cache_dir, "--model", "mlp").returncode == 0
    os.chown(cache_dir / ".ovcache" / "staging", 4242, 4242)
    run = _warm(repo, cache_dir, "--model", "mlp", "--force")
    assert run.returncode == 2 and "is owned by uid 4242" in _error_lines(run.stderr)[0]


# -- 4. a cache directory inside the model repository ----------------------------------------------


@pytest.mark.parametrize("inside", ["cache", "mlp/1/cache"])
def test_cache_inside_the_repository_is_refused_up_front(repo: Path, inside: str) -> None:
    cache = repo / inside
    run = _warm(repo, cache)
    assert run.returncode == 2
    (line,) = _error_lines(run.stderr)
    assert "is inside the model repository" in line and "put the cache outside" in line
    assert not cache.exists()  # refused before anything was created


# -- 5. a lock cannot be deleted from under its holder ----------------------------------------------


def test_deleting_lock_files_does_not_let_a_second_writer_in(cache_dir: Path) -> None:
    holder = CacheDir(cache_dir).check(create=True, writable=True)
    with holder.manifest_lock():
        for path in [holder.state / "manifest.lock", *holder.locks_root.iterdir()]:
            path.unlink(missing_ok=True)
        other = CacheDir(cache_dir, lock_timeout=0.3)
        with pytest.raises(LockTimeout), other.manifest_lock():
            pass


def test_concurrent_warms_lose_no_update_while_locks_are_deleted(repo: Path, cache_dir: Path, add_version) -> None:  # type: ignore[no-untyped-def]
    for model in ("m1", "m2", "m3", "m4"):
        add_version(repo, model, 1, "ir/1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "airflow_ovcache.cli.main", "warm", "--repository", str(repo)]
            + ["--cache-dir", str(cache_dir), "--model", model, "-q"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model in ("m1", "m2", "m3", "m4")
    ]
    while any(p.poll() is None for p in procs):
        for path in (cache_dir / ".ovcache").glob("**/*.lock"):
            path.unlink(missing_ok=True)
        time.sleep(0.002)
    assert all(p.wait() == 0 for p in procs), [p.stderr.read() for p in procs if p.stderr]
    manifest = Manifest.load(cache_dir / ".ovcache" / "manifest.json")
    assert sorted(e.model for e in manifest.entries.values()) == ["m1", "m2", "m3", "m4"]
    assert {p.name for p in blobs_in(cache_dir)} == manifest.blob_names()


# -- 8. names from input never break a line ----------------------------------------------------------


def test_control_characters_in_a_model_name_are_escaped(repo: Path, cache_dir: Path) -> None:
    forged = "mlp\nINFO - all hosts ok\x1b[2K"
    run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", forged, "--json")
    assert run.returncode == 2
    assert not any(line.startswith("INFO - all hosts ok") for line in run.stderr.splitlines())
    (line,) = _error_lines(run.stderr)
    assert "model mlp\\x0aINFO - all hosts ok\\x1b[2K" in line
    error = run.json["error"]
    assert error["code"] == "invalid-name" and error["model"] == forged  # the data stays exact; only printing escapes


def test_escaping_covers_hook_targets_and_reports() -> None:
    from airflow_ovcache.fleet.report import Cell, FleetReport, render_html
    from airflow_ovcache.hooks.errors import ConnectionConfigError
    from airflow_ovcache.protocol.location import Location

    err = ConnectionConfigError(Location("h\r1", "m\n2", "3", "CPU"), "bad\u2028thing")
    assert "\n" not in str(err) and "\r" not in str(err) and "\u2028" not in str(err)
    report = FleetReport("nightly", "now", [Cell("h1", "a\nFORGED", 1, "CPU", "unrepaired", "corrupt", "corrupt", "x\ny")])
    assert all("\n" not in line for line in report.problems())
    assert "a\\x0aFORGED" in render_html(report)


# -- 10. a verify racing a release does not page anyone -----------------------------------------------


def test_verify_during_warm_and_invalidate_reports_no_false_problems(repo: Path, cache_dir: Path) -> None:
    assert _warm(repo, cache_dir, "--model", "mlp", "--versions", "all").returncode == 0
    script = f"""
import subprocess, sys, time
agent = [sys.executable, "-m", "airflow_ovcache.cli.main"]
end = time.monotonic() + 10
while time.monotonic() < end:
    for args in (["warm", "--repository", {str(repo)!r}, "--model", "mlp", "--version-number", "1"],
                 ["warm", "--repository", {str(repo)!r}, "--model", "mlp", "--version-number", "2", "--force"],
                 ["invalidate", "--versions", "latest:1"]):
        subprocess.run([*agent, *args, "--cache-dir", {str(cache_dir)!r}, "-q"], check=True, capture_output=True)
"""
    writer = subprocess.Popen([sys.executable, "-c", script])
    verdicts = []
    try:
        while writer.poll() is None:
            run = ovcache("verify", "--cache-dir", str(cache_dir), "--json", "--no-device-check")
            doc = json.loads(run.stdout)
            verdicts.append((run.returncode, doc["result"]["summary"] if doc["error"] is None else doc["error"]))
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0
    assert len(verdicts) >= 5
    assert all(code == 0 for code, _ in verdicts), verdicts


# -- 9. invalidation works on a full disk ------------------------------------------------------------


@pytest.mark.root
def test_invalidate_frees_a_full_disk(repo: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)], check=True)
    try:
        cache = mnt / "cache"
        assert _warm(repo, cache, "--model", "mlp", "--versions", "all").returncode == 0
        assert (cache / ".ovcache" / "reserve").stat().st_blocks * 512 >= 1 << 20
        with open(mnt / "filler", "wb") as filler:
            try:
                while True:
                    filler.write(b"\0" * (64 << 10))
                    filler.flush()
            except OSError:
                pass
        full = _warm(repo, cache, "--model", "mlp", "--versions", "all", "--force")
        assert full.returncode == 2 and "invalidate" in full.stderr  # the hint names what works on a full disk
        run = ovcache("invalidate", "--cache-dir", str(cache), "--versions", "latest:1", "--json")
        assert run.returncode == 0, run.stderr
        assert [r["version"] for r in run.json["result"]["applied"]["removed"]] == [1]
        manifest = Manifest.load(cache / ".ovcache" / "manifest.json")
        assert [e.version for e in manifest.entries.values()] == [2] and manifest.pending == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# -- 3. one unusable version folder does not keep the host cold ----------------------------------------


def test_a_bad_version_folder_fails_alone(repo: Path, cache_dir: Path, model_templates: Path) -> None:
    (repo / "empty" / "2").mkdir(parents=True)  # a release still being copied
    (repo / "noversion").mkdir()
    two = repo / "two" / "1"
    shutil.copytree(model_templates / "ir" / "1", two)
    shutil.copy(model_templates / "onnx" / "1" / "model.onnx", two / "other.onnx")
    run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--json", env={"OVCACHE_HOST": "h9"})
    assert run.returncode == 2
    items = {(i["model"], i["version"]): i for i in run.json["result"]["items"]}
    assert items[("mlp", 2)]["status"] == "warmed" and items[("tiny", 1)]["status"] == "warmed"
    for key, needle in ((("empty", 2), "no model file"), (("noversion", None), "no version folder"), (("two", 1), "several")):
        item = items[key]
        assert item["status"] == "failed" and needle in item["reason"]
        assert item["error"]["model"] == key[0] and item["error"]["version"] == key[1] and item["error"]["host"] == "h9"
    lines = _error_lines(run.stderr)
    assert len(lines) == 3 and all("host h9, model " in line for line in lines)
    assert len(blobs_in(cache_dir)) == 2
