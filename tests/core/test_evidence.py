"""Evidence from the server's side, with real serving processes and real compiles.

A "server" here is a separate Python process that compiles the model the way a
serving application would, into the shared cache directory. The agent's own
reads (checksums, load checks) must leave the evidence where it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ovcache.core import evidence
from airflow_ovcache.core.blobfile import read_header
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.evidence import (
    NOT_SERVED_YET,
    SERVED,
    UNKNOWN,
    EvidenceReader,
    file_info,
    mount_of,
    parse_mountinfo,
)
from airflow_ovcache.core.loadcheck import private_copy
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.core.repository import ModelRepository
from airflow_ovcache.core.spec import CacheSpec
from airflow_ovcache.core.status import cache_status
from airflow_ovcache.core.verify import Verifier
from airflow_ovcache.core.warm import Warmer
from tests.conftest import ovcache, require

SERVER = """
import sys, openvino as ov
path, cache, mode = sys.argv[1:4]
core = ov.Core()
model = path if mode == "path" else core.read_model(path)
compiled = core.compile_model(model, "CPU", {"CACHE_DIR": cache})
print(compiled.get_property("LOADED_FROM_CACHE"))
"""


def serve(model_file: Path, cache: Path, mode: str = "path") -> bool:
    """A real serving process: compiles the model into the shared cache directory, as a server starting up would."""
    proc = subprocess.run(
        [sys.executable, "-c", SERVER, str(model_file), str(cache), mode],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip() == "True"


def warm(repo: Path, cache_dir: Path, compile_mode: str = "path", version: int = 2) -> CacheDir:
    r = ModelRepository(repo)
    cache = CacheDir(cache_dir).check(create=True, writable=True)
    warmer = Warmer(cache, repository_root=r.root)
    res = warmer.warm(r.version("mlp", version), CacheSpec.make(compile_mode=compile_mode))
    warmer.close()
    assert res.status == "warmed", res.reason
    return cache


def entry_evidence(cache_dir: Path, **verify: object) -> dict[str, object]:
    rows = [r for r in Verifier(CacheDir(cache_dir).check(create=False, writable=True), **verify).verify() if r.model]  # type: ignore[arg-type]
    assert len(rows) == 1 and rows[0].evidence is not None
    return rows[0].evidence


def test_a_serving_process_moves_an_entry_from_not_served_yet_to_served(repo: Path, cache_dir: Path) -> None:
    cache = warm(repo, cache_dir)
    before = entry_evidence(cache_dir)
    assert before["state"] == NOT_SERVED_YET and before["since"] and before["seconds"] is not None

    # The agent's own reads do not count: a load check, a full checksum, an inference check, status.
    run = ovcache("verify", "--cache-dir", str(cache_dir), "--load-check", "--checksum", "always", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    (row,) = [e for e in run.json["result"]["entries"] if e["model"]]
    assert row["loaded_from_cache"] and row["evidence"]["state"] == NOT_SERVED_YET, row
    assert "a compile following profile openvino loads from cache" in row["reason"]
    assert "server" not in row["reason"]
    assert entry_evidence(cache_dir, infer_check=True)["state"] == NOT_SERVED_YET
    assert cache_status(cache).entries[0].evidence["state"] == NOT_SERVED_YET  # type: ignore[index]

    assert serve(repo / "mlp" / "2" / "model.xml", cache_dir)  # the server hit the warmed blob
    after = entry_evidence(cache_dir)
    assert after["state"] == SERVED and after["at"] and after["since"] == before["since"], after
    status = ovcache("status", "--cache-dir", str(cache_dir), "--json").json["result"]
    assert status["entries"][0]["evidence"]["state"] == SERVED and status["orphans"] == []
    # The table says so too.
    table = ovcache("status", "--cache-dir", str(cache_dir)).stdout
    assert "served" in table


def test_a_server_compiling_by_model_leaves_a_server_compiled_orphan_shadowing_the_entry(repo: Path, cache_dir: Path) -> None:
    """The warm-up compiled by path; the server compiles the model object: another blob nobody warmed."""
    cache = warm(repo, cache_dir)
    key = Manifest.load(cache.manifest_path).select()[0].key
    assert not serve(repo / "mlp" / "2" / "model.xml", cache_dir, mode="model")  # a cold compile in the server
    run = ovcache("verify", "--cache-dir", str(cache_dir), "--json")
    entries = run.json["result"]["entries"]
    (orphan,) = [e for e in entries if e["status"] == "orphan"]
    assert orphan["server_compiled"] is True and orphan["shadows"] == key, orphan
    assert orphan["runtime"] and orphan["mtime"] and "check the serving profile" in orphan["hint"]
    assert "server compiled something else" in orphan["reason"]
    (row,) = [e for e in entries if e["model"]]
    assert row["evidence"]["state"] == NOT_SERVED_YET  # our blob was never read
    assert run.returncode == 1  # an orphan was a finding before evidence existed; evidence does not change that
    status = cache_status(cache)
    assert status.orphans[0]["server_compiled"] and status.orphans[0]["shadows"] == key


def test_the_header_names_the_model_file_of_the_entry_a_by_path_server_shadows(repo: Path, cache_dir: Path) -> None:
    """The warm-up compiled the model object; the server compiles by path: its header's file_info names our model file."""
    cache = warm(repo, cache_dir, compile_mode="model")
    key = Manifest.load(cache.manifest_path).select()[0].key
    serve(repo / "mlp" / "2" / "model.xml", cache_dir, mode="path")
    (orphan,) = [r for r in Verifier(cache).verify() if r.status == "orphan"]
    assert orphan.server_compiled and orphan.shadows == key
    assert f"most likely shadows {key}: its header names this entry's model file" in orphan.reason


def test_file_info_is_computed_as_openvino_writes_it(repo: Path, tmp_path: Path) -> None:
    xml = repo / "mlp" / "1" / "model.xml"
    serve(xml, tmp_path / "c")
    (blob,) = (tmp_path / "c").glob("*.blob")
    st = xml.stat()
    assert read_header(blob).file_info == file_info(str(xml), st.st_size, int(st.st_mtime))


def test_orphans_older_than_every_entry_stay_plain_orphans(repo: Path, cache_dir: Path) -> None:
    serve(repo / "mlp" / "1" / "model.xml", cache_dir)  # a server's blob from before the agent came
    warm(repo, cache_dir)
    (orphan,) = [r for r in Verifier(CacheDir(cache_dir).check(create=False, writable=True)).verify() if r.status == "orphan"]
    assert orphan.server_compiled is False and orphan.shadows is None and orphan.mtime


def test_a_load_check_copy_moves_neither_atime_nor_ctime(tmp_path: Path) -> None:
    src = tmp_path / "1.blob"
    src.write_bytes(os.urandom(3 << 20))
    os.utime(src, ns=(10**9, src.stat().st_mtime_ns))  # an atime older than mtime: any plain read would move it
    before = src.stat()
    private_copy(src, tmp_path / "copy.blob")
    after = src.stat()
    assert (after.st_atime_ns, after.st_ctime_ns) == (before.st_atime_ns, before.st_ctime_ns)
    assert (tmp_path / "copy.blob").read_bytes() == src.read_bytes()
    assert (tmp_path / "copy.blob").stat().st_mode & 0o777 == 0o600


def test_a_read_without_o_noatime_makes_the_evidence_unknown(
    repo: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel refuses O_NOATIME (not the owner, no CAP_FOWNER), our own read may be what moved the atime."""
    cache = warm(repo, cache_dir)
    real_open = os.open

    def refuse_noatime(path: object, flags: int, *args: object, **kw: object) -> int:
        if flags & os.O_NOATIME:
            raise PermissionError(1, "Operation not permitted")
        return real_open(path, flags, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refuse_noatime)
    try:
        ev = entry_evidence(cache_dir, checksum="always")
    finally:
        monkeypatch.undo()
        blob = cache.root / Manifest.load(cache.manifest_path).select()[0].blob
        assert evidence.read_without_atime(blob)
        evidence.forget_reads()
    assert ev["state"] == UNKNOWN and "without O_NOATIME" in str(ev["reason"]), ev


def test_a_partly_read_set_of_blobs_is_not_served_yet_and_names_the_unread(repo: Path, cache_dir: Path) -> None:
    cache = warm(repo, cache_dir)
    entry = Manifest.load(cache.manifest_path).select()[0]
    other = cache.root / "12345.blob"
    other.write_bytes(b"x")
    os.utime(other, ns=(1, 1))

    class TwoBlobs:
        all_blobs = [entry.blob, other.name]
        published_at_ns = entry.published_at_ns

    with open(cache.root / entry.blob, "rb") as handle:  # someone reads the first blob
        handle.read(1)
    ev = EvidenceReader(cache.root).for_entry(TwoBlobs())
    assert ev.state == NOT_SERVED_YET and "12345.blob" in ev.reason and entry.blob not in ev.reason


MOUNTINFO = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /srv/cache rw,noatime - xfs /dev/vdb rw
41 27 0:51 / /mnt/nfs rw,relatime - nfs4 server:/x rw,vers=4.2
42 27 0:52 / /mnt/my\\040fuse rw,relatime - fuse.sshfs host: rw
"""


@pytest.mark.parametrize(
    ("path", "words"),
    [("/srv/cache/ov", "noatime"), ("/mnt/nfs/c", "network or FUSE"), ("/mnt/my fuse/c", "fuse.sshfs"), ("/srv/cachex", None)],
)
def test_mounts_whose_atimes_say_nothing(path: str, words: str | None) -> None:
    mount = mount_of(path, MOUNTINFO)
    assert mount is not None
    problem = mount.atime_problem()
    assert (problem is None) if words is None else (words in str(problem)), problem


def test_mountinfo_parsing_keeps_the_fields_it_needs() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts] == ["/", "/srv/cache", "/mnt/nfs", "/mnt/my fuse"]
    assert "noatime" in mounts[1].options and mounts[2].fs_type == "nfs4"


@pytest.mark.root
def test_a_noatime_bind_mount_gives_unknown_with_the_reason(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root to mount")
    warm(repo, cache_dir)
    target = tmp_path / "noatime-cache"
    target.mkdir()
    subprocess.run(["mount", "--bind", str(cache_dir), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,noatime", str(target)], check=True)
        run = ovcache("verify", "--cache-dir", str(target), "--json")
        (row,) = [e for e in run.json["result"]["entries"] if e["model"]]
        assert row["evidence"]["state"] == UNKNOWN and "noatime" in row["evidence"]["reason"], row
        status = ovcache("status", "--cache-dir", str(target), "--json").json["result"]
        assert status["entries"][0]["evidence"]["state"] == UNKNOWN
    finally:
        subprocess.run(["umount", str(target)], check=False)
    assert json.loads(ovcache("status", "--cache-dir", str(cache_dir), "--json").stdout)["result"]["entries"]


NOT_OWNER = """
import json, os, sys
from pathlib import Path
from airflow_ovcache.core.blobfile import read_header
from airflow_ovcache.core.evidence import EvidenceReader, read_without_atime
blob = Path(sys.argv[1])
before = os.stat(blob).st_atime_ns
read_header(blob)

class Entry:
    all_blobs = [blob.name]
    published_at_ns = int(sys.argv[2])

ev = EvidenceReader(blob.parent).for_entry(Entry())
print(json.dumps({"recorded": read_without_atime(blob), "moved": os.stat(blob).st_atime_ns != before,
                  "state": ev.state, "reason": ev.reason}))
"""


@pytest.mark.root
def test_an_agent_that_does_not_own_the_blob_reports_unknown(repo: Path, cache_dir: Path) -> None:
    """A real non-owner (nobody, no CAP_FOWNER): the kernel refuses O_NOATIME, its read moves the atime."""
    from tests.conftest import readable_copy, usable_by_others

    require(os.geteuid() == 0, "needs root to run as nobody")
    cache = warm(repo, cache_dir)
    entry = Manifest.load(cache.manifest_path).select()[0]
    shared = readable_copy(cache_dir)  # the blobs stay root's, readable by others
    blob = shared / entry.blob
    os.utime(blob, ns=(10**9, blob.stat().st_mtime_ns))  # old atime: a plain read moves it
    try:
        with usable_by_others():
            proc = subprocess.run(
                ["runuser", "-u", "nobody", "--", sys.executable, "-c", NOT_OWNER, str(blob), str(blob.stat().st_ctime_ns)],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=Path(__file__).resolve().parents[2],
            )
    finally:
        shutil.rmtree(shared.parent, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["recorded"] and seen["moved"], seen  # the fallback read, and what it did
    assert seen["state"] == UNKNOWN and "without O_NOATIME" in seen["reason"], seen
