"""A tiny random-weight causal LM with its tokenizer IRs, built offline: what OpenVINO GenAI's LLMPipeline loads.

A GPT-2 config (2 layers, 32 wide) with random weights and a byte-level BPE tokenizer
trained by ``tokenizers`` on a few sentences, exported to OpenVINO IR by optimum-intel's
exporter (``text-generation-with-past``: the stateful model GenAI expects), and its
tokenizer and detokenizer converted by ``openvino-tokenizers``. No hub, no network.
About 15 s on a 2-core machine; build it once per test session.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

BUILD = r"""
import sys
from pathlib import Path

import openvino as ov
import torch
from openvino_tokenizers import convert_tokenizer
from optimum.exporters.openvino import main_export
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

out, src = Path(sys.argv[1]), Path(sys.argv[2])
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
sentences = ["the cache warms the model", "a blob is compiled once", "servers read blobs fast", "hello world"]
trainer = trainers.BpeTrainer(
    vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
)
tok.train_from_iterator(sentences, trainer)
eos = tok.token_to_id("<|endoftext|>")
torch.manual_seed(0)
config = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=2, n_head=2, n_positions=64, bos_token_id=eos, eos_token_id=eos)
GPT2LMHeadModel(config).save_pretrained(src)
PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>").save_pretrained(src)
main_export(str(src), output=str(out), task="text-generation-with-past")
# main_export converts the tokenizer only for some tokenizer classes: convert it here, always.
ov_tok, ov_detok = convert_tokenizer(AutoTokenizer.from_pretrained(out), with_detokenizer=True)
ov.save_model(ov_tok, out / "openvino_tokenizer.xml")
ov.save_model(ov_detok, out / "openvino_detokenizer.xml")
"""

FILES = ("openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml", "config.json")


def missing() -> str | None:
    """What the builder lacks on this host, or ``None`` when it can build."""
    for module, extra in (("optimum.intel", "optimum"), ("openvino_tokenizers", "genai"), ("torch", "optimum")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the {extra} extra)"
    return None


def build(out: Path, work: Path) -> Path:
    """Build the tiny LM into ``out`` (the GenAI folder); ``work`` holds the PyTorch checkpoint it is exported from.

    :param out: the folder to export to.
    :param work: a scratch folder for the transformers checkpoint.
    """
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", BUILD, str(out), str(work)], check=True, capture_output=True, env=env, timeout=300)
    assert all((out / name).is_file() for name in FILES), sorted(p.name for p in out.iterdir())
    return out
