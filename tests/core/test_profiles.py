"""Serving profiles end to end through the agent: ``ovms`` from the server's own config.json,
``python`` through an in-house server's loader, and entries of several blobs.

Each warm-up is judged from the server's side by a separate process that does
what the server does (for OVMS: the reproduction of its calls in
tests/core/test_ovms.py, written from the OVMS source, not our module; for the
python profile: the sample server's own loader) and must load from the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from airflow_ovcache.core.blobfile import blob_checksum
from airflow_ovcache.core.cachedir import CacheDir
from airflow_ovcache.core.manifest import Manifest
from airflow_ovcache.samples import build_ir, build_onnx, swap_weights_in_place
from tests.conftest import blobs_in, ovcache
from tests.core.test_ovms import build_multi_io, run_ovms_reproduction

SCHEMA = json.loads((Path(__file__).parents[2] / "airflow_ovcache" / "cli" / "agent-schema.json").read_text())
ROOT = Path(__file__).parents[2]


def _entries(cache: Path) -> list:  # type: ignore[type-arg]
    return Manifest.load(cache / ".ovcache" / "manifest.json").select()


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ovcache: error:")]


@pytest.fixture(scope="module")
def ovms_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ovms") / "models"
    build_ir(root / "resnet" / "1" / "model.xml", size_mb=0.5, seed=1)
    build_ir(root / "resnet" / "2" / "model.xml", size_mb=0.5, seed=2)
    build_onnx(root / "tiny" / "1" / "model.onnx", width=32, seed=3)
    build_multi_io(root / "multi" / "1" / "model.xml")
    return root


def _config(folder: Path, entries: list[dict]) -> Path:  # type: ignore[type-arg]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps({"model_config_list": [{"config": e} for e in entries]}))
    return path


# -- ovms -------------------------------------------------------------------------------------


def test_ovms_config_drives_warm_verify_rewarm_and_invalidate(ovms_repo: Path, tmp_path: Path) -> None:
    """A reproduction of OVMS's calls, in its own process, loads every warmed model from the cache."""
    repo = tmp_path / "models"
    shutil.copytree(ovms_repo, repo)
    # The server sees the repository as /models (a container mount); the agent sees it at `repo`.
    config = _config(
        tmp_path / "conf",
        [
            {"name": "resnet", "base_path": "/models/resnet", "model_version_policy": {"all": {}}, "layout": "nc"},
            {"name": "tiny", "base_path": "/models/tiny", "target_device": "CPU", "shape": "(2,32)"},
            {"name": "multi", "base_path": "/models/multi", "plugin_config": {"NUM_STREAMS": 1}},
        ],
    )
    cache = tmp_path / "cache"
    args = [
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache),
        "--ovms-config",
        str(config),
        "--ovms-path-map",
        f"/models={repo}",
    ]
    run = ovcache("warm", *args, "--confirm", "--json")
    assert run.returncode == 0, run.stderr
    jsonschema.validate(run.json, SCHEMA)
    items = {(i["model"], i["version"]): i for i in run.json["result"]["items"]}
    assert sorted(items) == [("multi", 1), ("resnet", 1), ("resnet", 2), ("tiny", 1)]
    assert all(i["status"] == "warmed" and i["loaded_from_cache"] for i in items.values())
    # the server's side: OVMS's own steps find the blobs
    for name, model_file in (("resnet", "resnet/2/model.xml"), ("tiny", "tiny/1/model.onnx"), ("multi", "multi/1/model.xml")):
        assert run_ovms_reproduction(config, name, repo / model_file, cache), name
    # and the profile matters: a by-path warm of the same files writes other blobs
    by_path = tmp_path / "by-path"
    assert ovcache("warm", "--repository", str(repo), "--cache-dir", str(by_path), "--versions", "all").returncode == 0
    assert not {p.name for p in blobs_in(by_path)} & {p.name for p in blobs_in(cache)}

    assert ovcache("verify", "--cache-dir", str(cache), "--load-check").returncode == 0
    entry = next(e for e in _entries(cache) if e.model == "tiny")
    assert entry.spec["profile"] == "ovms" and entry.spec["profile_options"]["shape"] == "(2,32)"
    (cache / entry.blob).unlink()
    rewarm = ovcache("rewarm", "--cache-dir", str(cache), "--json")
    assert rewarm.returncode == 0, rewarm.stderr
    assert (cache / entry.blob).exists() and run_ovms_reproduction(config, "tiny", repo / "tiny/1/model.onnx", cache)

    # invalidation keeps what the server's policies serve: resnet serves all, so nothing goes;
    # with the config switched to latest 1, version 1 goes
    plan = ovcache(
        "invalidate", "--cache-dir", str(cache), "--ovms-config", str(config), "--ovms-path-map", f"/models={repo}", "--json"
    )
    assert plan.returncode == 0 and plan.json["result"]["applied"]["removed"] == []
    doc = json.loads(config.read_text())
    doc["model_config_list"][0]["config"]["model_version_policy"] = {"latest": {"num_versions": 1}}
    config.write_text(json.dumps(doc))
    done = ovcache(
        "invalidate", "--cache-dir", str(cache), "--ovms-config", str(config), "--ovms-path-map", f"/models={repo}", "--json"
    )
    assert [(r["model"], r["version"]) for r in done.json["result"]["applied"]["removed"]] == [("resnet", 1)]


def test_ovms_models_that_cannot_be_warmed_fail_alone(ovms_repo: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models"
    shutil.copytree(ovms_repo, repo)
    outside = tmp_path / "elsewhere" / "m"
    build_ir(outside / "1" / "model.xml", size_mb=0.1, seed=5)
    (repo / "empty" / "1").mkdir(parents=True)
    config = _config(
        tmp_path / "conf",
        [
            {"name": "resnet", "base_path": str(repo / "resnet")},
            {"name": "outside", "base_path": str(outside)},
            {"name": "onthegpu", "base_path": str(repo / "tiny"), "target_device": "GPU"},
            {"name": "empty", "base_path": str(repo / "empty")},
            {"name": "auto", "base_path": str(repo / "tiny"), "shape": "auto"},
        ],
    )
    cache = tmp_path / "cache"
    run = ovcache(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache),
        "--ovms-config",
        str(config),
        "--json",
        env={"OVCACHE_HOST": "h4"},
    )
    assert run.returncode == 2
    jsonschema.validate(run.json, SCHEMA)
    items = {i["model"]: i for i in run.json["result"]["items"]}
    assert items["resnet"]["status"] == "warmed"
    assert items["auto"]["status"] == "skipped" and "OVMS does not cache this model: shape is auto" in items["auto"]["reason"]
    assert items["outside"]["status"] == "failed" and "is outside the repository" in items["outside"]["reason"]
    assert items["onthegpu"]["status"] == "failed" and items["onthegpu"]["device"] == "GPU"
    assert items["empty"]["status"] == "failed" and items["empty"]["version"] == 1
    for line in _errors(run.stderr):
        assert line.startswith("ovcache: error: host h4, model ")
        assert str(config) in line or "device GPU" in line or "version 1" in line
    assert [e.model for e in _entries(cache)] == ["resnet"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{not json", "is not JSON"),
        ('{"models": []}', "model_config_list"),
        ('{"model_config_list": [{"config": {"name": "a", "base_path": "/m", "colour": 1}}]}', "colour"),
        ('{"model_config_list": [{"config": {"name": "a", "base_path": "/m", "batch_size": [1]}}]}', "batch_size"),
        (
            '{"model_config_list": [{"config": {"name": "a", "base_path": "/m", "model_version_policy": {"specific": {"versions": "12"}}}}]}',
            "versions",
        ),
    ],
)
def test_a_bad_ovms_config_is_one_line(tmp_path: Path, repo: Path, text: str, needle: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(text)
    cache = tmp_path / "cache"
    run = ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), "--ovms-config", str(config), "--json")
    assert run.returncode == 2
    (line,) = _errors(run.stderr)
    assert str(config) in line and needle in line
    assert run.json["error"]["code"] == "usage"


def test_ovms_config_refuses_compile_flags(tmp_path: Path, repo: Path) -> None:
    config = _config(tmp_path, [{"name": "mlp", "base_path": str(repo / "mlp")}])
    run = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(tmp_path / "c"), "--ovms-config", str(config), "--device", "GPU"
    )
    assert run.returncode == 2 and "--device cannot be combined with --ovms-config" in _errors(run.stderr)[0]


# -- python -------------------------------------------------------------------------------------


def _serve_with_the_loader(model_dir: Path, cache: Path) -> bool:
    """The in-house server itself, in its own process: its loader, its cache directory."""
    code = (
        "import json, sys\n"
        "from tests.samples.inhouse_server import load\n"
        "c = load(sys.argv[1], 'CPU', {'CACHE_DIR': sys.argv[2]})\n"
        "print(json.dumps(bool(c.get_property('LOADED_FROM_CACHE'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(cache)], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return bool(json.loads(done.stdout.strip().splitlines()[-1]))


def test_python_profile_warms_what_the_servers_loader_reads(repo: Path, cache_dir: Path) -> None:
    loader = "tests.samples.inhouse_server:load"
    run = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp",
        "--profile", "python", "--loader", loader, "--loader-path", str(ROOT), "--confirm", "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    (item,) = run.json["result"]["items"]
    assert item["status"] == "warmed" and item["loaded_from_cache"] is True
    blobs = {p.name for p in blobs_in(cache_dir)}
    assert _serve_with_the_loader(repo / "mlp" / "2", cache_dir)
    assert {p.name for p in blobs_in(cache_dir)} == blobs  # the server wrote nothing of its own
    by_path = cache_dir.parent / "plain"
    assert ovcache("warm", "--repository", str(repo), "--cache-dir", str(by_path), "--model", "mlp").returncode == 0
    assert not {p.name for p in blobs_in(by_path)} & blobs
    assert ovcache("verify", "--cache-dir", str(cache_dir), "--load-check").returncode == 0
    (entry,) = _entries(cache_dir)
    assert entry.spec["profile"] == "python" and entry.spec["profile_options"]["loader"] == loader


@pytest.mark.parametrize(
    ("loader", "needle"),
    [
        ("tests.samples.no_such_module:load", "cannot be imported"),
        ("tests.samples.inhouse_server:load_that_raises", "raised RuntimeError: no GPU memory for"),
        ("tests.samples.inhouse_server:load_without_a_blob", "returned, but wrote no cache blob"),
        ("not a loader", "is not package.module:function"),
    ],
)
def test_a_loader_that_fails_is_one_line(repo: Path, cache_dir: Path, loader: str, needle: str) -> None:
    run = ovcache(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--model", "mlp", "--versions", "all",
        "--profile", "python", "--loader", loader, "--loader-path", str(ROOT), "--json", env={"OVCACHE_HOST": "h5"},
    )  # fmt: skip
    assert run.returncode == 2
    lines = _errors(run.stderr)
    assert lines and all(needle in line and line.startswith("ovcache: error: host h5") for line in lines), run.stderr
    assert not blobs_in(cache_dir) if cache_dir.exists() else True


# -- several blobs per entry ---------------------------------------------------------------------

BATCH = "BATCH:CPU(4)"


def test_a_load_of_several_blobs_is_one_entry(repo: Path, cache_dir: Path) -> None:
    run = ovcache(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
        "--model",
        "mlp",
        "--device",
        BATCH,
        "--confirm",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    jsonschema.validate(run.json, SCHEMA)
    (item,) = run.json["result"]["items"]
    assert item["loaded_from_cache"] is True and len(item["blobs"]) == 2
    (entry,) = _entries(cache_dir)
    assert sorted(entry.all_blobs) == sorted(p.name for p in blobs_in(cache_dir))
    assert ovcache("verify", "--cache-dir", str(cache_dir), "--load-check").returncode == 0
    status = ovcache("status", "--cache-dir", str(cache_dir), "--json").json["result"]
    assert status["orphans"] == [] and status["entries"][0]["present"]
    # one blob of the set gone: the entry is missing, and rewarm rebuilds the whole set
    (cache_dir / entry.all_blobs[1]).unlink()
    verify = ovcache("verify", "--cache-dir", str(cache_dir), "--json")
    assert verify.returncode == 1 and verify.json["result"]["entries"][0]["status"] == "missing"
    assert ovcache("rewarm", "--cache-dir", str(cache_dir)).returncode == 0
    assert len(blobs_in(cache_dir)) == 2
    # retiring it removes every blob of it
    ovcache(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
        "--model",
        "mlp",
        "--device",
        BATCH,
        "--version-number",
        "1",
    )
    assert len(blobs_in(cache_dir)) == 4
    done = ovcache("invalidate", "--cache-dir", str(cache_dir), "--versions", "latest:1", "--json")
    assert done.returncode == 0
    assert sorted(p.name for p in blobs_in(cache_dir)) == sorted(next(e for e in _entries(cache_dir)).all_blobs)


def test_a_kill_during_a_set_publish_leaves_a_whole_set(repo: Path, tmp_path: Path) -> None:
    """SIGKILL at each filesystem step of a re-publish; after the next writing run the set is whole, old or new."""
    template = tmp_path / "template"
    base = ["warm", "--repository", str(repo), "--model", "mlp", "--device", BATCH, "-q"]
    assert ovcache(*base, "--cache-dir", str(template)).returncode == 0
    swap_weights_in_place(repo / "mlp" / "2" / "model.bin", seed=5)  # same blob names, other bytes
    count_file = tmp_path / "count"
    agent = [sys.executable, "-m", "tests.security.killpoint"]
    trial = tmp_path / "trial"
    shutil.copytree(template, trial, symlinks=True)
    subprocess.run(
        [*agent, "0", *base, "--cache-dir", str(trial), "--force"],
        env={**os.environ, "OVCACHE_KILLPOINT_COUNT": str(count_file)},
        cwd=ROOT,
        check=True,
    )
    total = int(count_file.read_text())
    outcomes = set()
    # every other step of the last 60: the staged blobs being hashed and fsynced, the journal, the renames, the manifest
    for point in range(max(1, total - 60), total + 1, 2):
        shutil.rmtree(trial)
        shutil.copytree(template, trial, symlinks=True)
        # its own process group: the kill takes the agent and its children, not this test
        subprocess.run(
            [*agent, str(point), *base, "--cache-dir", str(trial), "--force"],
            cwd=ROOT,
            capture_output=True,
            start_new_session=True,
        )
        CacheDir(trial).check(create=False, writable=True)  # what the next warm, invalidate or rewarm does first
        (entry,) = _entries(trial)
        records = [(entry.blob, entry.checksum), *((b["blob"], b["checksum"]) for b in entry.extra_blobs)]
        on_disk = {p.name for p in blobs_in(trial)}
        assert on_disk == {name for name, _ in records}, point
        assert all(blob_checksum(trial / name) == checksum for name, checksum in records), f"a mixed set after a kill at {point}"
        old = Manifest.load(template / ".ovcache" / "manifest.json").select()[0]
        outcomes.add("old" if entry.checksum == old.checksum else "new")
    assert outcomes == {"old", "new"}  # the window covered kills before and after the publish
