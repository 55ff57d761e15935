"""Concurrent warm-ups and warm-ups killed at any moment, with real processes and real compiles."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_ovcache.core.blobfile import blob_checksum, read_header
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.samples import build_ir
from tests.conftest import blobs_in, ovcache

AGENT = [sys.executable, "-m", "airflow_ovcache.cli.main"]


@pytest.fixture
def big_repo(tmp_path: Path) -> Path:
    """A model that takes long enough to compile that kills and races land inside the compile."""
    root = tmp_path / "models"
    build_ir(root / "wide" / "1" / "model.xml", size_mb=16.0, seed=11, layers=8)
    return root


def _assert_cache_whole(cache: Path, reference: dict[str, str]) -> None:
    """Every blob under a final name is a whole, valid blob; the manifest (if any) parses and points at them."""
    for blob in blobs_in(cache):
        read_header(blob)
        if blob.name in reference:
            assert blob_checksum(blob) == reference[blob.name], f"{blob.name} is not the whole blob"
    manifest_path = cache / ".ovcache" / "manifest.json"
    if manifest_path.exists():
        manifest = Manifest.load(manifest_path)  # raises if torn
        for entry in manifest.entries.values():
            path = cache / entry.blob
            if path.exists():
                assert blob_checksum(path) == entry.checksum


def test_eight_concurrent_warmups_compile_once(big_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["warm", "--repository", str(big_repo), "--cache-dir", str(cache), "--json", "-q"]
    procs = [subprocess.Popen([*AGENT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    statuses = sorted(json.loads(out)["result"]["items"][0]["status"] for out, _ in outputs)
    assert statuses == ["unchanged"] * 7 + ["warmed"]
    blobs = blobs_in(cache)
    assert len(blobs) == 1
    manifest = Manifest.load(cache / ".ovcache" / "manifest.json")
    (entry,) = manifest.entries.values()
    assert entry.blob == blobs[0].name and entry.checksum == blob_checksum(blobs[0])
    assert ovcache("verify", "--cache-dir", str(cache), "--load-check", "--json").json["result"]["summary"] == {"ok": 1}


def test_concurrent_warmups_of_different_versions_into_one_cache(repo: Path, add_version, cache_dir: Path) -> None:  # type: ignore[no-untyped-def]
    for v in (3, 4, 5):
        add_version(repo, "mlp", v)
    procs = [
        subprocess.Popen(
            [
                *AGENT,
                "warm",
                "--repository",
                str(repo),
                "--cache-dir",
                str(cache_dir),
                "--model",
                "mlp",
                "--version-number",
                str(v),
                "-q",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in (1, 2, 3, 4, 5)
        for _ in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    manifest = Manifest.load(cache_dir / ".ovcache" / "manifest.json")
    assert sorted(e.version for e in manifest.entries.values()) == [1, 2, 3, 4, 5]
    # versions 3-5 are copies of one template at different paths: by-path blobs differ by path
    assert len(blobs_in(cache_dir)) == 5


def test_sigkill_at_any_moment_leaves_no_partial_blob(big_repo: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = [*AGENT, "warm", "--repository", str(big_repo), "--cache-dir", str(cache), "--force", "-q", "--json"]
    start = time.perf_counter()
    first = subprocess.run(args, capture_output=True, text=True, check=True)
    full = time.perf_counter() - start
    item = json.loads(first.stdout)["result"]["items"][0]
    reference = {item["blob"]: blob_checksum(cache / item["blob"])}
    rng = random.Random(1234)
    trials = 16
    killed_during = 0
    for trial in range(trials):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        # Spread kills over the whole run: interpreter start, compile, hashing, rename, manifest write.
        delay = rng.uniform(0.05, full * 1.1)
        time.sleep(delay)
        if proc.poll() is None:
            killed_during += 1
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_cache_whole(cache, reference)
        # Deterministic compile: a republished blob equals the reference; anything else would be torn.
        assert {b.name for b in blobs_in(cache)} <= set(reference), f"trial {trial}: unexpected blob"
    assert killed_during >= trials // 2, "most trials should kill a running warm-up"
    after = subprocess.run(
        [*AGENT, "warm", "--repository", str(big_repo), "--cache-dir", str(cache), "--json", "-q"], capture_output=True, text=True
    )
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["result"]["items"][0]["status"] in ("warmed", "unchanged")
    assert list((cache / ".ovcache" / "staging").iterdir()) == []  # what the killed runs left is cleared
    verify = ovcache("verify", "--cache-dir", str(cache), "--load-check", "--json")
    assert verify.json["result"]["summary"] == {"ok": 1}, verify.stdout
