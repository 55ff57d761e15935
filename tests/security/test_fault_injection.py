"""Fault injection with real processes and real compiles: SIGKILL anywhere, and a crowd of agents at once.

Every trial kills a real ``ovcache`` run (warm, verify with load checks, invalidate)
either at one of its filesystem mutations, counted by :mod:`tests.security.killpoint`
(before or after each rename, unlink, fsync...), or after a random delay that can
land inside OpenVINO's own compile. After every kill the cache directory must hold:

* no partial blob under a final name: every ``<hash>.blob`` parses and is byte for
  byte a blob that a complete run of the same command writes (OpenVINO's bytes
  depend on what the process compiled before, so each command's complete run is
  recorded as a reference);
* a manifest that parses (its digest checks out);
* every retained version's entry and blob, intact.

Trial counts are small by default and seeded; ``OVCACHE_FAULT_TRIALS`` raises them
(kill points per command) and ``OVCACHE_FAULT_SECONDS`` lengthens the concurrency run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airflow_ovcache.core.blobfile import blob_checksum, read_header
from airflow_ovcache.core.manifest import Manifest
from tests.conftest import blobs_in, ovcache

AGENT = [sys.executable, "-m", "airflow_ovcache.cli.main"]
KILLPOINT = [sys.executable, "-m", "tests.security.killpoint"]
TRIALS = int(os.environ.get("OVCACHE_FAULT_TRIALS", "7"))
RANDOM_TRIALS = max(2, TRIALS // 2)
MIX_SECONDS = float(os.environ.get("OVCACHE_FAULT_SECONDS", "12"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def three_versions(tmp_path: Path, model_templates: Path) -> Path:
    root = tmp_path / "models"
    for v in (1, 2, 3):
        shutil.copytree(model_templates / "ir" / str(v), root / "mlp" / str(v))
    return root


class Cache:
    """One cache directory under fault injection, with what a whole compile of each version writes."""

    def __init__(self, repo: Path, cache: Path) -> None:
        self.repo, self.dir = repo, cache
        run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), "--versions", "all", "--json", "-q")
        assert run.returncode == 0, run.stderr
        self.reference: dict[str, set[str]] = {}
        self.learn()
        items = run.json["result"]["items"]
        self.blob_of = {i["version"]: i["blob"] for i in items}
        assert len(self.reference) == 3

    def learn(self) -> None:
        """Record the blobs on disk now, after a complete run, as whole ones."""
        for p in blobs_in(self.dir):
            self.reference.setdefault(p.name, set()).add(blob_checksum(p))

    def commands(self) -> dict[str, list[str]]:
        base = ["--cache-dir", str(self.dir), "-q", "--json"]
        return {
            "warm-v1": ["warm", "--repository", str(self.repo), "--model", "mlp", "--version-number", "1", "--force", *base],
            "warm-retained": [
                "warm",
                "--repository",
                str(self.repo),
                "--model",
                "mlp",
                "--versions",
                "latest:2",
                "--force",
                *base,
            ],
            "verify": ["verify", "--load-check", *base],
            "invalidate": ["invalidate", "--versions", "latest:2", "--orphans", "--orphan-min-age", "0", *base],
        }

    def manifest(self) -> Manifest:
        return Manifest.load(self.dir / ".ovcache" / "manifest.json")  # raises if torn or edited

    def check(self, label: str, exact: bool = True) -> None:
        """The invariants. ``exact``: every blob is byte for byte a recorded whole one; otherwise
        (runs that recompile in process histories of their own) every blob is one the manifest
        records, with its checksum."""
        manifest = self.manifest()
        recorded = {e.blob: e.checksum for e in manifest.entries.values()}
        for blob in blobs_in(self.dir):
            read_header(blob)
            if exact:
                assert blob.name in self.reference, f"{label}: unknown blob {blob.name} under a final name"
                assert blob_checksum(blob) in self.reference[blob.name], f"{label}: {blob.name} is not a whole blob"
            else:
                assert recorded.get(blob.name) == blob_checksum(blob), f"{label}: {blob.name} is not a recorded whole blob"
        for version in (2, 3):  # retained by latest:2 and never invalidated
            entries = manifest.select("mlp", version)
            assert entries, f"{label}: the entry of retained version {version} is gone"
            blob = self.dir / entries[0].blob
            assert blob.exists(), f"{label}: the blob of retained version {version} is gone"
            assert blob_checksum(blob) == entries[0].checksum
        # A manifest entry never points at a blob that is not whole.
        for entry in manifest.entries.values():
            path = self.dir / entry.blob
            if path.exists():
                assert blob_checksum(path) == entry.checksum, f"{label}: {entry.key} points at other bytes"

    def ensure_v1(self) -> None:
        if not self.manifest().select("mlp", 1):
            run = ovcache(*self.commands()["warm-v1"])
            assert run.returncode == 0, run.stderr


def _count(args: list[str], tmp: Path) -> int:
    out = tmp / "count"
    proc = subprocess.run(
        [*KILLPOINT, "0", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OVCACHE_KILLPOINT_COUNT": str(out)},
        cwd=ROOT,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return int(out.read_text())


def _spread(total: int, k: int) -> list[int]:
    if total <= k:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (k - 1)) for i in range(k)})


@pytest.mark.slow
def test_sigkill_at_mutation_points_and_random_moments(three_versions: Path, tmp_path: Path) -> None:
    cache = Cache(three_versions, tmp_path / "cache")
    rng = random.Random(20261126)
    outcomes: dict[str, dict[str, int]] = {}
    for name, args in cache.commands().items():
        if name == "invalidate":
            cache.ensure_v1()
        total = _count(args, tmp_path)
        cache.learn()
        tally = outcomes.setdefault(name, {"killed": 0, "finished": 0, "points": total})
        plans: list[tuple[str, float]] = [("point", p) for p in _spread(total, TRIALS)]
        plans += [("delay", rng.uniform(0.05, 1.2)) for _ in range(RANDOM_TRIALS)]
        for how, at in plans:
            if name == "invalidate":
                cache.ensure_v1()
            label = f"{name} killed at {how} {at}"
            if how == "point":
                proc = subprocess.Popen(
                    [*KILLPOINT, str(at), *args],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    cwd=ROOT,
                )
                _, err = proc.communicate(timeout=300)
                killed = proc.returncode == -signal.SIGKILL
                assert killed or proc.returncode in (0, 1), f"{label}: exit {proc.returncode}: {err.decode()[-2000:]}"
            else:
                proc = subprocess.Popen(
                    [*AGENT, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
                )
                time.sleep(float(at))
                killed = proc.poll() is None
                if killed:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            tally["killed" if killed else "finished"] += 1
            cache.check(label)
    # The trials must have killed runs, not watched them finish.
    assert all(t["killed"] >= TRIALS // 2 for t in outcomes.values()), outcomes
    # Whatever the kills left behind, the next runs finish the job and leave a whole, verified cache.
    run = ovcache(*cache.commands()["invalidate"])
    assert run.returncode == 0, run.stderr
    assert run.json["result"]["applied"] is not None
    manifest = cache.manifest()
    assert manifest.pending == []
    assert sorted(e.version for e in manifest.entries.values()) == [2, 3]
    assert {b.name for b in blobs_in(cache.dir)} == {cache.blob_of[2], cache.blob_of[3]}
    warm = ovcache("warm", "--repository", str(cache.repo), "--cache-dir", str(cache.dir), "--versions", "all", "--json", "-q")
    assert warm.returncode == 0, warm.stderr
    assert not list((cache.dir / ".ovcache" / "staging").iterdir())
    verify = ovcache("verify", "--cache-dir", str(cache.dir), "--load-check", "--json")
    assert verify.json["result"]["summary"] == {"ok": 3}, verify.stdout
    print(f"fault injection outcomes: {json.dumps(outcomes)}")


@pytest.mark.slow
def test_concurrent_warm_verify_invalidate_for_a_bounded_time(three_versions: Path, tmp_path: Path) -> None:
    cache = Cache(three_versions, tmp_path / "cache")
    commands = cache.commands()
    assert ovcache(*commands["warm-v1"]).returncode == 0  # version 1 compiled on its own, as warm-v1 and warm-all do
    cache.learn()
    commands["warm-all"] = [
        "warm",
        "--repository",
        str(cache.repo),
        "--cache-dir",
        str(cache.dir),
        "--versions",
        "all",
        "-q",
        "--json",
    ]
    workers = {
        "warm-v1": ("warm-v1", (0,)),
        "warm-all": ("warm-all", (0,)),
        "verify": ("verify", (0, 1)),  # 1: it saw an entry that an invalidation removed under it
        "invalidate": ("invalidate", (0,)),
    }
    deadline = time.monotonic() + MIX_SECONDS
    failures: list[str] = []
    runs: dict[str, int] = {name: 0 for name in workers}

    def loop(name: str, command: str, allowed: tuple[int, ...]) -> None:
        while time.monotonic() < deadline and not failures:
            proc = subprocess.run([*AGENT, *commands[command]], capture_output=True, text=True, timeout=300)
            runs[name] += 1
            if proc.returncode not in allowed or "Traceback" in proc.stderr:
                failures.append(f"{name}: exit {proc.returncode}: {proc.stderr[-1500:]}")
                return
            doc = json.loads(proc.stdout)
            if doc["error"] is not None:
                failures.append(f"{name}: {doc['error']}")

    threads = [threading.Thread(target=loop, args=(n, c, a)) for n, (c, a) in workers.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert all(n >= 2 for n in runs.values()), runs
    # A concurrent load check links a blob (its ctime moves), which can make a warm rebuild it in a
    # process of its own, with bytes of its own: whole, but not byte-equal to the reference.
    cache.check("after the concurrent run", exact=False)
    # No lost entry: once the crowd is gone, one warm and one verify see every version whole.
    warm = ovcache(*commands["warm-all"])
    assert warm.returncode == 0, warm.stderr
    assert all(i["status"] in ("warmed", "unchanged") for i in warm.json["result"]["items"])
    verify = ovcache("verify", "--cache-dir", str(cache.dir), "--load-check", "--json")
    assert verify.json["result"]["summary"] == {"ok": 3}, verify.stdout
    manifest = cache.manifest()
    assert manifest.pending == [] and sorted(e.version for e in manifest.entries.values()) == [1, 2, 3]
    print(f"concurrent runs in {MIX_SECONDS:g}s: {runs}")


def test_a_sigterm_inside_a_critical_section_lands_after_it(tmp_path: Path) -> None:
    """What the agent does between journaling and clearing a deletion is finished before a SIGTERM ends it."""
    code = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from airflow_ovcache.core.fsutil import signals_deferred\n"
        "with signals_deferred():\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    Path(sys.argv[1]).write_text('finished')\n"
        "print('after the section')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "mark")], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == -signal.SIGTERM
    assert (tmp_path / "mark").read_text() == "finished" and "after the section" not in proc.stdout
