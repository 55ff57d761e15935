"""Safe permissions: private by default, a serving group on request, unsafe directories refused.

Plus the failures a production host meets: a full disk (a small tmpfs) and a
cache directory the agent may not write (as ``nobody``): a clear error, nothing lost.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from airflow_ovcache.core.manifest import Manifest
from tests.conftest import blobs_in, ovcache, readable_copy, require, usable_by_others


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _warm(repo: Path, cache: Path, *extra: str, user: str | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache), "--model", "mlp", "--json", *extra, user=user, env=env
    )


def test_a_new_cache_is_private(repo: Path, cache_dir: Path) -> None:
    run = _warm(repo, cache_dir, "--confirm")
    assert run.returncode == 0, run.stderr
    state = cache_dir / ".ovcache"
    assert _mode(cache_dir) == 0o700 and _mode(state) == 0o700
    assert _mode(state / "manifest.json") == 0o600 and _mode(state / "host.json") == 0o600
    # (the stat cache is written once the model files are a few seconds old)
    assert not (state / "fingerprints.json").exists() or _mode(state / "fingerprints.json") == 0o600
    assert _mode(state / "staging") == 0o700 and _mode(state / "locks") == 0o700
    assert all(_mode(p) == 0o600 for p in (state / "locks").iterdir())
    (blob,) = blobs_in(cache_dir)
    assert _mode(blob) == 0o400


def test_an_old_state_folder_is_brought_in_line(repo: Path, cache_dir: Path) -> None:
    assert _warm(repo, cache_dir).returncode == 0
    os.chmod(cache_dir / ".ovcache", 0o755)
    os.chmod(cache_dir / ".ovcache" / "manifest.json", 0o644)
    assert _warm(repo, cache_dir, "--force").returncode == 0
    assert _mode(cache_dir / ".ovcache") == 0o700 and _mode(cache_dir / ".ovcache" / "manifest.json") == 0o600


@pytest.mark.root
def test_a_serving_group_can_read_but_not_write(repo: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root and runuser to act as nobody")
    group = grp.getgrgid(65534).gr_name  # nobody's own group stands in for the serving group
    shared = readable_copy(repo)
    cache = shared.parent / "cache"
    try:
        run = _warm(shared, cache, env={"OVCACHE_GROUP": group})
        assert run.returncode == 0, run.stderr
        state = cache / ".ovcache"
        assert _mode(cache) == 0o2750 and cache.stat().st_gid == 65534
        assert _mode(state) == 0o2750 and state.stat().st_gid == 65534
        assert _mode(state / "manifest.json") == 0o640 and (state / "manifest.json").stat().st_gid == 65534
        (blob,) = blobs_in(cache)
        assert _mode(blob) == 0o440 and blob.stat().st_gid == 65534
        with usable_by_others():
            verify = ovcache("verify", "--cache-dir", str(cache), "--json", user="nobody")
            status = ovcache("status", "--cache-dir", str(cache), "--json", user="nobody")
            warm = _warm(shared, cache, "--force", user="nobody")
        assert verify.returncode == 0, verify.stderr
        assert verify.json["result"]["summary"] == {"ok": 1}
        assert status.returncode == 0, status.stderr
        assert warm.returncode == 2 and "not writable by uid 65534" in warm.stderr
    finally:
        shutil.rmtree(shared.parent)


def test_a_world_writable_cache_is_refused_and_left_alone(repo: Path, cache_dir: Path) -> None:
    assert _warm(repo, cache_dir).returncode == 0
    os.chmod(cache_dir, 0o777)
    manifest = (cache_dir / ".ovcache" / "manifest.json").read_bytes()
    for command in (["verify"], ["status"], ["invalidate", "--versions", "latest:1"]):
        run = ovcache(*command, "--cache-dir", str(cache_dir), "--json")
        assert run.returncode == 2, run.stderr
        error = run.json["error"]
        assert error["code"] == "unsafe-cache-dir" and "writable by every user (mode 0777)" in error["message"]
        assert "--unsafe-cache-dir warn" in error["hint"]
    refused = _warm(repo, cache_dir, "--force")
    assert refused.returncode == 2 and refused.json["error"]["code"] == "unsafe-cache-dir"
    assert (cache_dir / ".ovcache" / "manifest.json").read_bytes() == manifest
    # A lab machine can say so, and gets a warning instead.
    lab = ovcache("verify", "--cache-dir", str(cache_dir), "--json", "--unsafe-cache-dir", "warn")
    assert lab.returncode == 0 and any("writable by every user" in w for w in lab.json["result"]["warnings"])
    assert "ovcache: warning: unsafe cache directory" in lab.stderr


def test_a_cache_under_a_folder_anyone_can_rename_in_is_refused(repo: Path, tmp_path: Path) -> None:
    parent = tmp_path / "open"
    parent.mkdir()
    os.chmod(parent, 0o777)  # no sticky bit: anyone may rename the cache away and put another there
    run = _warm(repo, parent / "cache")
    assert run.returncode == 2 and run.json["error"]["code"] == "unsafe-cache-dir"
    assert "without the sticky bit" in run.json["error"]["message"]
    os.chmod(parent, 0o1777)
    assert _warm(repo, parent / "cache").returncode == 0


@pytest.mark.root
def test_another_owner_is_a_warning_or_under_strict_a_refusal(repo: Path, cache_dir: Path) -> None:
    require(os.geteuid() == 0, "chown needs root")
    assert _warm(repo, cache_dir).returncode == 0
    os.chown(cache_dir, 65534, -1)
    run = ovcache("verify", "--cache-dir", str(cache_dir), "--json")
    assert run.returncode == 0 and any("owned by uid 65534" in w for w in run.json["result"]["warnings"])
    strict = ovcache("verify", "--cache-dir", str(cache_dir), "--json", env={"OVCACHE_UNSAFE_CACHE_DIR": "strict"})
    assert strict.returncode == 2 and strict.json["error"]["code"] == "unsafe-cache-dir"


# -- a full disk, an unwritable directory ----------------------------------------------------------


@pytest.mark.root
def test_a_full_disk_during_invalidate_loses_nothing(repo: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("mount") is not None, "mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], check=True)
    try:
        cache = mnt / "cache"
        assert (
            ovcache(
                "warm", "--repository", str(repo), "--cache-dir", str(cache), "--model", "mlp", "--versions", "all"
            ).returncode
            == 0
        )
        # A cache without the reserve (one an older agent warmed): the journal cannot be written.
        (cache / ".ovcache" / "reserve").unlink()
        blobs = {p.name: p.read_bytes() for p in blobs_in(cache)}
        manifest = (cache / ".ovcache" / "manifest.json").read_bytes()
        filler = mnt / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)  # fill every last block: even the manifest cannot be written
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        run = ovcache("invalidate", "--cache-dir", str(cache), "--versions", "latest:1", "--json")
        assert run.returncode == 2, run.stderr
        assert run.json["error"]["code"] == "disk-full" and "space" in run.json["error"]["message"]
        assert "--dry-run" in run.json["error"]["hint"]  # what still works on a full disk
        assert {p.name: p.read_bytes() for p in blobs_in(cache)} == blobs
        assert (cache / ".ovcache" / "manifest.json").read_bytes() == manifest
        filler.unlink()
        done = ovcache("invalidate", "--cache-dir", str(cache), "--versions", "latest:1", "--json")
        assert done.returncode == 0, done.stderr
        assert [e.version for e in Manifest.load(cache / ".ovcache" / "manifest.json").select()] == [2]
        assert len(blobs_in(cache)) == 1
        assert (cache / ".ovcache" / "reserve").exists()  # set aside again for the next full disk
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.root
def test_an_unwritable_cache_as_nobody_fails_clearly_and_loses_nothing(repo: Path) -> None:
    require(os.geteuid() == 0 and shutil.which("runuser") is not None, "needs root and runuser to act as nobody")
    shared = readable_copy(repo)
    cache = shared.parent / "cache"
    try:
        assert (
            ovcache(
                "warm", "--repository", str(shared), "--cache-dir", str(cache), "--versions", "all", "--model", "mlp"
            ).returncode
            == 0
        )
        os.chmod(cache, 0o755)
        before = {p.name: p.stat().st_mtime_ns for p in blobs_in(cache)}
        with usable_by_others():
            inval = ovcache("invalidate", "--cache-dir", str(cache), "--versions", "latest:1", "--json", user="nobody")
            rewarm = ovcache("rewarm", "--cache-dir", str(cache), "--json", user="nobody")
        for run in (inval, rewarm):
            assert run.returncode == 2, run.stderr
            assert "uid 65534" in run.json["error"]["message"] and run.json["error"]["code"] == "cache-dir"
        assert {p.name: p.stat().st_mtime_ns for p in blobs_in(cache)} == before
    finally:
        shutil.rmtree(shared.parent)
