"""The ``optimum`` serving profile with the real libraries: a tiny encoder built offline, optimum-intel's own loader.

One random-weight BERT-like encoder is built from a ``transformers`` config (with a
tokenizer trained by ``tokenizers`` on a few sentences) and exported to OpenVINO IR
by optimum-intel's exporter, once per test session. Each warm-up is then judged by
optimum-intel itself: a separate process, written here and not calling our module,
loads the folder with ``from_pretrained`` and the same ``CACHE_DIR`` and must report
``LOADED_FROM_CACHE`` without writing a blob of its own. No network: the hub is off.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.core.optimum import check_model_class
from airflow_ovcache.core.spec import CacheSpec, ServingConfig
from airflow_ovcache.samples import build_ir
from tests.conftest import blobs_in, ovcache, require

ROOT = Path(__file__).parents[2]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OVCACHE_HOST": "h13"}
CLASS = "OVModelForFeatureExtraction"

BUILD = r"""
import sys
from pathlib import Path

import torch
from optimum.exporters.openvino import main_export
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

out, src = Path(sys.argv[1]), Path(sys.argv[2])
tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
tok.normalizer = normalizers.BertNormalizer(lowercase=True)
tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
sentences = ["the cache warms the model", "a blob is compiled once", "servers read blobs fast", "hello world"]
tok.train_from_iterator(sentences, trainers.WordPieceTrainer(vocab_size=200, special_tokens=special))
tok.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", special_tokens=[(t, tok.token_to_id(t)) for t in ("[CLS]", "[SEP]")]
)
torch.manual_seed(0)
config = BertConfig(
    vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
    intermediate_size=64, max_position_embeddings=64,
)
BertModel(config).save_pretrained(src)
PreTrainedTokenizerFast(
    tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
).save_pretrained(src)
main_export(str(src), output=str(out), task="feature-extraction")
"""

# optimum-intel as a server uses it, in its own process: the folder, the device, CACHE_DIR, nothing of ours.
SERVE = r"""
import json, sys
from optimum.intel import OVModelForFeatureExtraction

model = OVModelForFeatureExtraction.from_pretrained(sys.argv[1], device="CPU", ov_config={"CACHE_DIR": sys.argv[2]})
print(json.dumps(bool(model.request.get_property("LOADED_FROM_CACHE"))))
"""


def _env() -> dict[str, str]:
    return {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported tiny encoder's version folder (optimum-intel's own files), built once for the whole tier."""
    require(importlib.util.find_spec("optimum.intel") is not None, "optimum-intel is not installed (the optimum extra)")
    base = tmp_path_factory.mktemp("optimum")
    out = base / "export"
    subprocess.run(
        [sys.executable, "-c", BUILD, str(out), str(base / "torch")], check=True, capture_output=True, env=_env(), timeout=300
    )
    assert (out / "openvino_model.xml").is_file() and (out / "config.json").is_file()
    return out


def _repo(encoder: Path, tmp_path: Path, *models: str) -> Path:
    root = tmp_path / "models"
    for name in models:
        shutil.copytree(encoder, root / name / "1")
    return root


def _serving_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serving.toml"
    path.write_text(text)
    return path


def _served_from_cache(version_dir: Path, cache: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", SERVE, str(version_dir), str(cache)], capture_output=True, text=True, env=_env(), check=True
    )
    return bool(json.loads(done.stdout.strip().splitlines()[-1]))


def _warm(repo: Path, cache: Path, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return ovcache("warm", "--repository", str(repo), "--cache-dir", str(cache), *args, env={**OFFLINE, **(env or {})})


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ovcache: error:")]


def _names_everything(line: str, model: str) -> bool:
    return all(part in line for part in ("host h13", f"model {model}", "version 1", "device CPU", "optimum profile"))


def test_optimum_warm_is_the_blob_optimum_reads(encoder: Path, tmp_path: Path) -> None:
    repo = _repo(encoder, tmp_path, "enc")
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--profile", "optimum", "--model-class", CLASS, "--confirm", "--json")
    assert run.returncode == 0, run.stderr
    (item,) = run.json["result"]["items"]
    assert item["status"] == "warmed" and item["loaded_from_cache"] is True, item
    assert item["spec"] == f"CPU (optimum {CLASS})"
    blobs = {p.name for p in blobs_in(cache)}
    assert blobs
    assert _served_from_cache(repo / "enc" / "1", cache)
    assert {p.name for p in blobs_in(cache)} == blobs  # optimum wrote nothing of its own
    # A plain by-model compile of the same IR is another blob: only the library's own load warms what it reads.
    plain = tmp_path / "plain"
    assert _warm(repo, plain, "--model-file", "openvino_model.xml", "--compile-mode", "model").returncode == 0
    assert not {p.name for p in blobs_in(plain)} & blobs


def test_a_changed_config_or_tokenizer_file_makes_the_entry_stale(encoder: Path, tmp_path: Path) -> None:
    repo = _repo(encoder, tmp_path, "enc")
    cache = tmp_path / "cache"
    assert _warm(repo, cache, "--profile", "optimum", "--model-class", CLASS).returncode == 0
    first = {p.name for p in blobs_in(cache)}
    assert _status(cache) == "ok"
    # A tokenizer file changed: verify says stale, rewarm rebuilds the entry.
    tokenizer = repo / "enc" / "1" / "tokenizer_config.json"
    _add_key(tokenizer)
    assert _status(cache) == "stale-model"
    rewarm = ovcache("rewarm", "--cache-dir", str(cache), "--json", env=OFFLINE)
    assert rewarm.returncode == 0, rewarm.stderr
    # The graph did not change, so the rebuilt blob has the name optimum looks up; a load following the profile
    # (optimum's own call, in verify's fresh process) reads it.
    assert _status(cache, "--load-check") == "ok"
    assert {p.name for p in blobs_in(cache)} == first
    # config.json changed: stale too; its old bytes back make the entry current again (a content hash, not a stat).
    config = repo / "enc" / "1" / "config.json"
    original = config.read_bytes()
    _add_key(config)
    assert _status(cache) == "stale-model"
    config.write_bytes(original)
    assert _status(cache) == "ok"


def _add_key(path: Path) -> None:
    data = json.loads(path.read_text())
    data["ovcache_test_note"] = f"changed {path.name}"
    path.write_text(json.dumps(data))


def _status(cache: Path, *args: str) -> str:
    run = ovcache("verify", "--cache-dir", str(cache), "--json", *args, env=OFFLINE)
    (row,) = run.json["result"]["entries"]
    assert run.returncode == (0 if row["status"] == "ok" else 1), run.stdout
    return str(row["status"])


def test_bad_input_is_one_line_and_the_rest_is_warmed(encoder: Path, tmp_path: Path) -> None:
    repo = _repo(encoder, tmp_path, "enc", "noconfig", "badclass")
    (repo / "noconfig" / "1" / "config.json").unlink()
    config = _serving_config(
        tmp_path,
        f'[defaults]\nprofile = "optimum"\nmodel_class = "{CLASS}"\n\n[models.badclass]\nmodel_class = "OVModelForTeleportation"\n',
    )
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--config", str(config), "--json")
    assert run.returncode == 2
    items = {i["model"]: i for i in run.json["result"]["items"]}
    assert items["enc"]["status"] == "warmed"
    assert items["noconfig"]["status"] == items["badclass"]["status"] == "failed"
    lines = _errors(run.stderr)
    assert len(lines) == 2, run.stderr
    (noconfig,) = [line for line in lines if "model noconfig" in line]
    (badclass,) = [line for line in lines if "model badclass" in line]
    assert _names_everything(noconfig, "noconfig") and "from_pretrained" in noconfig
    assert _names_everything(badclass, "badclass") and "OVModelForTeleportation" in badclass


def test_a_host_without_the_extra_names_it_and_warms_the_rest(encoder: Path, tmp_path: Path) -> None:
    repo = _repo(encoder, tmp_path, "enc")
    build_ir(repo / "mlp" / "1" / "model.xml", size_mb=0.2, seed=1)
    # The host without the extra: an `optimum` that cannot be imported shadows the installed one.
    hidden = tmp_path / "hidden"
    (hidden / "optimum").mkdir(parents=True)
    (hidden / "optimum" / "__init__.py").write_text("raise ImportError('No module named optimum')\n")
    config = _serving_config(tmp_path, f'[models.enc]\nprofile = "optimum"\nmodel_class = "{CLASS}"\n')
    cache = tmp_path / "cache"
    run = _warm(repo, cache, "--config", str(config), "--json", env={"PYTHONPATH": f"{hidden}{os.pathsep}{ROOT}"})
    assert run.returncode == 2
    items = {i["model"]: i for i in run.json["result"]["items"]}
    assert items["mlp"]["status"] == "warmed" and items["enc"]["status"] == "failed"
    (line,) = _errors(run.stderr)
    assert _names_everything(line, "enc") and "pip install 'airflow-ovcache[optimum]'" in line, line


def test_the_core_and_other_profiles_never_import_the_libraries() -> None:
    """Neither optimum's nor GenAI's libraries (nor openvino-tokenizers) are imported by the core or a spec."""
    code = (
        "import sys\n"
        "import airflow_ovcache.cli.main, airflow_ovcache.core.warm, airflow_ovcache.core.verify\n"
        "import airflow_ovcache.core.optimum, airflow_ovcache.core.genai, airflow_ovcache.core.pyloader\n"
        "import airflow_ovcache.core.compiler\n"
        "from airflow_ovcache.core.spec import ServingConfig\n"
        "ServingConfig(defaults={'profile': 'optimum', 'model_class': 'OVModelForCausalLM'}).specs_for('m')\n"
        "ServingConfig(defaults={'profile': 'genai', 'pipeline': 'LLMPipeline'}).specs_for('m')\n"
        "libraries = ('optimum', 'torch', 'transformers', 'openvino_genai', 'openvino_tokenizers')\n"
        "print(sorted(m for m in libraries if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    assert done.stdout.strip() == "[]"


def test_the_optimum_spec_is_what_optimum_intel_loads() -> None:
    (spec,) = ServingConfig(defaults={"profile": "optimum", "model_class": CLASS}).specs_for("m")
    assert (spec.model_file, spec.compile_mode, spec.profile_options) == ("openvino_model.xml", "model", {"model_class": CLASS})
    assert spec.spec_id(None) != CacheSpec.make(model_file="openvino_model.xml", compile_mode="model").spec_id(None)
    (override,) = ServingConfig(defaults={"profile": "optimum", "model_class": CLASS}).specs_for(
        "m", {"profile_options": {"model_class": "OVModelForCausalLM"}}
    )
    assert override.profile_options == {"model_class": "OVModelForCausalLM"}


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"profile": "optimum"}, "needs a model_class"),
        ({"profile": "optimum", "model_class": CLASS, "model_file": "other.xml"}, "loads openvino_model.xml"),
        ({"profile": "optimum", "model_class": CLASS, "compile_mode": "path"}, "compiles the model object"),
        ({"model_class": CLASS}, 'a model_class needs profile = "optimum"'),
    ],
)
def test_an_optimum_spec_that_cannot_be_right_is_refused(settings: dict[str, str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        ServingConfig(models={"m": settings}).specs_for("m")
    with pytest.raises(UsageError, match="is not one the agent knows"):
        check_model_class("OVModelForTeleportation")
