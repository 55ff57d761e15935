"""The ``genai`` serving profile with the real library: a tiny causal LM built offline, GenAI's own LLMPipeline.

The tiny LM (tests/core/tiny_llm.py) is built once per session. Each warm-up is judged by
OpenVINO GenAI itself: a separate process, written here and not calling our module,
constructs ``LLMPipeline`` on the version folder with the warmed ``CACHE_DIR``. GenAI does
not expose its compiled model, so a hit is judged by the cache: the load writes no new
blob and leaves every blob as it was (name, mtime, size, bytes). The default attention
backend instead replaces its blob under the same name on every load (docs/serving-profiles.md),
which one test pins down. No network: the hub is off.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.genai import check_pipeline
from airflow_ovcache.core.spec import ServingConfig
from airflow_ovcache.samples import build_ir
from tests.conftest import blobs_in, ovcache, require
from tests.core import tiny_llm

ROOT = Path(__file__).parents[2]
OFFLINE = {**tiny_llm.OFFLINE, "OVCACHE_HOST": "h13"}

# GenAI as a server uses it, in its own process: the folder, the device, CACHE_DIR (and any properties), nothing of ours.
SERVE = r"""
import json, sys
import openvino_genai

pipe = openvino_genai.LLMPipeline(sys.argv[1], "CPU", CACHE_DIR=sys.argv[2], **json.loads(sys.argv[3]))
print(repr(pipe.generate("hello", max_new_tokens=2)))
"""
# The backend whose blob LLMPipeline imports on CPU (the default, paged attention, replaces it on every load).
SDPA = ("--property", "ATTENTION_BACKEND=SDPA")
SDPA_KWARGS = {"ATTENTION_BACKEND": "SDPA"}


def _env() -> dict[str, str]:
    return {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported tiny LM's version folder (GenAI's files), built once for the whole tier."""
    require(importlib.util.find_spec("openvino_genai") is not None, "openvino-genai is not installed (the genai extra)")
    why = tiny_llm.missing()
    require(why is None, why or "")
    base = tmp_path_factory.mktemp("genai")
    return tiny_llm.build(base / "export", base / "torch")


def _repo(llm: Path, tmp_path: Path, *models: str) -> Path:
    root = tmp_path / "models"
    for name in models:
        shutil.copytree(llm, root / name / "1")
    return root


def _cache_state(cache: Path) -> dict[str, tuple[int, int, str]]:
    """Each blob's name with its mtime, size and checksum: a load from cache changes none of them."""
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest()) for p in blobs_in(cache)}


def _serve(version_dir: Path, cache: Path, properties: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-c", SERVE, str(version_dir), str(cache), json.dumps(properties or {})]
    subprocess.run(cmd, capture_output=True, env=_env(), check=True)


def _warm(repo: Path, cache: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), *args, env={**OFFLINE, **(env or {})})


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ovcache: error:")]


def _names_everything(line: str, model: str) -> bool:
    return all(part in line for part in ("host h13", f"model {model}", "version 1", "device CPU", "genai profile"))


def _status(cache: Path, *args: str) -> str:
    run = ovcache("verify", "--cache-dir", str(cache), "--json", *args, env=OFFLINE)
    (row,) = run.json["result"]["entries"]
    assert run.returncode == (0 if row["status"] == "ok" else 1), run.stdout
    return str(row["status"])


def test_genai_warm_is_the_blob_llmpipeline_reads(llm: Path, tmp_path: Path) -> None:
    repo = _repo(llm, tmp_path, "llm")
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--profile", "genai", *SDPA, "--confirm", "--json")
    assert run.returncode == 0, run.stderr
    (item,) = run.json["result"]["items"]
    assert item["status"] == "warmed" and item["loaded_from_cache"] is True, item
    assert item["spec"] == "CPU (genai LLMPipeline)"
    warmed = _cache_state(cache)
    assert warmed
    # The server's own load: no new blob, none rewritten (same mtime, size and bytes).
    _serve(repo / "llm" / "1", cache, SDPA_KWARGS)
    assert _cache_state(cache) == warmed
    assert _status(cache, "--load-check") == "ok"
    assert _cache_state(cache) == warmed
    # A plain by-model compile of the same IR is another blob: only GenAI's own load warms what it reads.
    plain = tmp_path / "plain"
    assert _warm(repo, plain, "--model-file", "openvino_model.xml", "--compile-mode", "model").returncode == 0
    assert not {p.name for p in blobs_in(plain)} & set(warmed)


def test_the_default_backend_replaces_its_blob_on_every_load_and_confirm_says_so(llm: Path, tmp_path: Path) -> None:
    """Measured with openvino-genai 2026.4.1 on CPU: paged attention never imports its blob; no warm can change that."""
    repo = _repo(llm, tmp_path, "llm")
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--profile", "genai", "--confirm", "--json")
    assert run.returncode == 2
    (item,) = run.json["result"]["items"]
    assert item["status"] == "failed" and item["loaded_from_cache"] is False, item
    (line,) = _errors(run.stderr)
    assert (
        "host h13, model llm, version 1, device CPU" in line
        and "replaced it on load" in line
        and "ATTENTION_BACKEND=SDPA" in line
    ), line
    published = _cache_state(cache)
    _serve(repo / "llm" / "1", cache)
    after = _cache_state(cache)
    assert set(after) == set(published)  # the same name ...
    # ... but written anew: OpenVINO unlinked the blob it could not import.
    assert all(after[n][0] != published[n][0] for n in after)


def test_a_changed_tokenizer_or_config_makes_the_entry_stale(llm: Path, tmp_path: Path) -> None:
    repo = _repo(llm, tmp_path, "llm")
    cache = tmp_path / "cache"
    assert _warm(repo, cache, "--profile", "genai", *SDPA).returncode == 0
    first = set(_cache_state(cache))
    assert _status(cache) == "ok"
    # The tokenizer IR changed (a comment after its root element: still a valid IR): stale; rewarm rebuilds it.
    tokenizer = repo / "llm" / "1" / "openvino_tokenizer.xml"
    tokenizer.write_text(tokenizer.read_text() + "<!-- changed by the test -->\n")
    assert _status(cache) == "stale-model"
    rewarm = ovcache("rewarm", "--cache-dir", str(cache), "--json", env=OFFLINE)
    assert rewarm.returncode == 0, rewarm.stderr
    assert _status(cache, "--load-check") == "ok"
    assert set(_cache_state(cache)) == first  # the language model did not change: the same blob name
    # config.json changed: stale too; its old bytes back make the entry current again.
    config = repo / "llm" / "1" / "config.json"
    original = config.read_bytes()
    config.write_bytes(original.replace(b"{", b'{"ovcache_test_note": 1, ', 1))
    assert _status(cache) == "stale-model"
    config.write_bytes(original)
    assert _status(cache) == "ok"


def test_bad_input_is_one_line_and_the_rest_is_warmed(llm: Path, tmp_path: Path) -> None:
    repo = _repo(llm, tmp_path, "llm", "broken", "badkind")
    weights = repo / "broken" / "1" / "openvino_model.bin"
    weights.write_bytes(weights.read_bytes()[:1000])
    config = tmp_path / "serving.toml"
    config.write_text('[defaults]\nprofile = "genai"\n\n[models.badkind]\npipeline = "VLMPipeline"\n')
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--config", str(config), "--json")
    assert run.returncode == 2
    items = {i["model"]: i for i in run.json["result"]["items"]}
    assert items["llm"]["status"] == "warmed"
    assert items["broken"]["status"] == items["badkind"]["status"] == "failed"
    lines = _errors(run.stderr)
    assert len(lines) == 2, run.stderr
    (broken,) = [line for line in lines if "model broken" in line]
    (badkind,) = [line for line in lines if "model badkind" in line]
    assert _names_everything(broken, "broken") and "LLMPipeline(" in broken and "Incorrect weights" in broken, broken
    assert _names_everything(badkind, "badkind") and "'VLMPipeline'" in badkind and "LLMPipeline" in badkind, badkind


def test_a_host_without_the_extra_names_it_and_warms_the_rest(llm: Path, tmp_path: Path) -> None:
    repo = _repo(llm, tmp_path, "llm")
    build_ir(repo / "mlp" / "1" / "model.xml", size_mb=0.2, seed=1)
    # The host without the extra: an `openvino_genai` that cannot be imported shadows the installed one.
    hidden = tmp_path / "hidden"
    (hidden / "openvino_genai").mkdir(parents=True)
    (hidden / "openvino_genai" / "__init__.py").write_text("raise ImportError('No module named openvino_genai')\n")
    config = tmp_path / "serving.toml"
    config.write_text('[models.llm]\nprofile = "genai"\npipeline = "LLMPipeline"\n')
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--config", str(config), "--json", env={"PYTHONPATH": f"{hidden}{os.pathsep}{ROOT}"})
    assert run.returncode == 2
    items = {i["model"]: i for i in run.json["result"]["items"]}
    assert items["mlp"]["status"] == "warmed" and items["llm"]["status"] == "failed"
    (line,) = _errors(run.stderr)
    assert _names_everything(line, "llm") and "pip install 'airflow-ovcache[genai]'" in line, line


def test_the_genai_spec_is_what_llmpipeline_loads() -> None:
    (spec,) = ServingConfig(defaults={"profile": "genai"}).specs_for("m")
    assert (spec.model_file, spec.compile_mode, spec.profile_options) == (
        "openvino_model.xml",
        "model",
        {"pipeline": "LLMPipeline"},
    )
    assert spec.label() == "CPU (genai LLMPipeline)"
    (explicit,) = ServingConfig(defaults={"profile": "genai", "pipeline": "LLMPipeline"}).specs_for("m")
    assert explicit.spec_id(None) == spec.spec_id(None)


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"profile": "genai", "model_file": "other.xml"}, "loads openvino_model.xml"),
        ({"profile": "genai", "compile_mode": "path"}, "compiles the model object"),
        ({"pipeline": "LLMPipeline"}, 'a pipeline needs profile = "genai"'),
    ],
)
def test_a_genai_spec_that_cannot_be_right_is_refused(settings: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        ServingConfig(models={"m": settings}).specs_for("m")
    with pytest.raises(UsageError, match=r"pipeline 'VLMPipeline' is not one the agent knows \(known: LLMPipeline\)"):
        check_pipeline("VLMPipeline")


def test_the_pipeline_flag_needs_the_genai_profile(tmp_path: Path) -> None:
    build_ir(tmp_path / "models" / "m" / "1" / "model.xml", size_mb=0.1, seed=1)
    run = _warm(tmp_path / "models", tmp_path / "cache", "--pipeline", "LLMPipeline")
    assert run.returncode != 0 and "--pipeline is the genai profile's" in run.stderr, run.stderr
