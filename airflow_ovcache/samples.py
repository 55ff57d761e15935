"""Small, deterministic models for the demo, the tests and the benchmarks.

Real OpenVINO IR and ONNX files built from a seed, so that "a model of a few
MB" is the same model on every machine and a test can swap weights for other
weights of exactly the same size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _weights(rng: Any, shape: tuple[int, ...]) -> Any:
    import numpy as np

    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)


def build_ir(path: str | os.PathLike[str], size_mb: float = 2.0, seed: int = 0, layers: int = 4, width: int = 0) -> Path:
    """Write an IR model (``.xml`` + ``.bin``) of about ``size_mb`` of fp32 weights.

    An MLP of ``layers`` square matmuls; the width is chosen so that the weights
    total ``size_mb``. The same arguments give the same bytes.

    :param path: the ``.xml`` file to write (its ``.bin`` goes beside it; folders are made).
    :param size_mb: about how many MiB of weights; ignored when ``width`` is given.
    :param seed: the random seed of the weights.
    :param layers: how many matmul layers.
    :param width: the layers' width; 0 chooses it from ``size_mb``.
    :returns: ``path``.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(seed)
    if width <= 0:
        width = max(8, int((size_mb * (1 << 20) / 4 / max(layers, 1)) ** 0.5))
    x = ops.parameter([1, width], np.float32, name="input")
    node: Any = x
    for i in range(layers):
        node = ops.matmul(node, ops.constant(_weights(rng, (width, width))), False, False)
        node = ops.add(node, ops.constant(_weights(rng, (1, width))))
        node = ops.relu(node) if i < layers - 1 else ops.softmax(node, 1)
    model = ov.Model([node], [x], f"mlp_{seed}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out), compress_to_fp16=False)
    return out


def build_transformer(path: str | os.PathLike[str], layers: int = 8, width: int = 192, seq: int = 64, seed: int = 0) -> Path:
    """Write an IR model shaped like a small transformer encoder.

    Many small ops (normalisation, attention reshapes, softmax, GELU) make the
    CPU plugin's compile markedly slower than its cached load, as with real
    language and vision transformers, which an MLP of the same size does not.

    :param path: the ``.xml`` file to write (its ``.bin`` goes beside it; folders are made).
    :param layers: how many encoder layers.
    :param width: the hidden width (a multiple of the 4 attention heads).
    :param seq: the input sequence length.
    :param seed: the random seed of the weights.
    :returns: ``path``.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    rng = np.random.default_rng(seed)
    heads = 4
    head_dim = width // heads

    def dense(n_in: int, n_out: int) -> Any:
        return ops.constant(_weights(rng, (n_in, n_out)))

    def norm(node: Any) -> Any:
        return ops.mvn(node, ops.constant(np.array([2], dtype=np.int64)), True, 1e-5, "inside_sqrt")

    split = ops.constant(np.array([1, seq, heads, head_dim], dtype=np.int64))
    merge = ops.constant(np.array([1, seq, width], dtype=np.int64))
    perm = ops.constant(np.array([0, 2, 1, 3], dtype=np.int64))
    x = ops.parameter([1, seq, width], np.float32, name="input")
    node: Any = x
    for _ in range(layers):
        h = norm(node)
        q, k, v = (
            ops.transpose(ops.reshape(ops.matmul(h, dense(width, width), False, False), split, False), perm) for _ in range(3)
        )
        scores = ops.multiply(ops.matmul(q, k, False, True), ops.constant(np.float32(1 / np.sqrt(head_dim))))
        attended = ops.reshape(ops.transpose(ops.matmul(ops.softmax(scores, 3), v, False, False), perm), merge, False)
        node = ops.add(node, ops.matmul(attended, dense(width, width), False, False))
        hidden = ops.gelu(ops.matmul(norm(node), dense(width, 4 * width), False, False), "erf")
        node = ops.add(node, ops.matmul(hidden, dense(4 * width, width), False, False))
    model = ov.Model([norm(node)], [x], f"encoder_{seed}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(out), compress_to_fp16=False)
    return out


def build_onnx(path: str | os.PathLike[str], width: int = 64, seed: int = 0) -> Path:
    """Write a small ONNX model (MatMul, Add, Relu); needs the ``onnx`` package.

    :param path: the ``.onnx`` file to write (folders are made).
    :param width: the input and output width.
    :param seed: the random seed of the weights.
    :returns: ``path``.
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array(_weights(rng, (width, width)), "W")
    b = numpy_helper.from_array(_weights(rng, (1, width)), "B")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "B"], ["biased"]),
            helper.make_node("Relu", ["biased"], ["output"]),
        ],
        f"onnx_{seed}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, width])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, width])],
        [w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


# The causal LM builder runs in a child process: torch, transformers and optimum-intel's exporter stay
# out of the caller (and its memory), and a crash in them is the child's.
_CAUSAL_LM = r"""
import sys
from pathlib import Path

import openvino as ov
import torch
from openvino_tokenizers import convert_tokenizer
from optimum.exporters.openvino import main_export
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

out, src, layers, width, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tok = Tokenizer(models.BPE(unk_token="<unk>"))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
sentences = ["the cache warms the model", "a blob is compiled once", "servers read blobs fast", "hello world"]
trainer = trainers.BpeTrainer(
    vocab_size=300, special_tokens=["<unk>", "<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
)
tok.train_from_iterator(sentences, trainer)
eos = tok.token_to_id("<|endoftext|>")
torch.manual_seed(seed)
heads = max(2, width // 64)
config = GPT2Config(
    vocab_size=tok.get_vocab_size(), n_embd=width, n_layer=layers, n_head=heads, n_positions=64, bos_token_id=eos, eos_token_id=eos
)
GPT2LMHeadModel(config).save_pretrained(src)
PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<|endoftext|>", eos_token="<|endoftext|>").save_pretrained(src)
main_export(str(src), output=str(out), task="text-generation-with-past")
# main_export converts the tokenizer only for some tokenizer classes: convert it here, always.
ov_tok, ov_detok = convert_tokenizer(AutoTokenizer.from_pretrained(out), with_detokenizer=True)
ov.save_model(ov_tok, out / "openvino_tokenizer.xml")
ov.save_model(ov_detok, out / "openvino_detokenizer.xml")
"""
# What OpenVINO GenAI's LLMPipeline and optimum-intel's OVModelForCausalLM read from the folder.
CAUSAL_LM_FILES = (
    "openvino_model.xml",
    "openvino_model.bin",
    "openvino_tokenizer.xml",
    "openvino_detokenizer.xml",
    "config.json",
)


def causal_lm_missing() -> str | None:
    """What :func:`build_causal_lm` lacks on this host (a module and the extra that brings it), or ``None``."""
    import importlib.util

    for module, extra in (("optimum.intel", "optimum"), ("openvino_tokenizers", "genai"), ("torch", "optimum")):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (the {extra} extra)"
    return None


def build_causal_lm(
    out: str | os.PathLike[str], work: str | os.PathLike[str], layers: int = 2, width: int = 32, seed: int = 0
) -> Path:
    """Build a random-weight GPT-2 causal LM with its tokenizer IRs, offline: what LLM servers load.

    A byte-level BPE tokenizer trained by ``tokenizers`` on four sentences (vocabulary 300),
    a GPT-2 config with random weights, exported to OpenVINO IR by optimum-intel's exporter
    (``text-generation-with-past``: the stateful model GenAI expects), tokenizer and
    detokenizer converted by ``openvino-tokenizers``. No hub, no network. Needs the
    ``optimum`` and ``genai`` extras. The default (2 layers, 32 wide) is well under a MB and
    builds in about 15 s on 2 cores; 6 layers of 384 make about 43 MB of FP32 weights.

    :param out: the version folder to export to (``openvino_model.xml`` and the tokenizer IRs).
    :param work: a scratch folder for the transformers checkpoint it is exported from.
    :param layers: transformer blocks.
    :param width: the hidden size (heads: one per 64, at least 2).
    :param seed: the random seed of the weights.
    :returns: ``out``.
    """
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    argv = [sys.executable, "-c", _CAUSAL_LM, os.fspath(out), os.fspath(work), str(layers), str(width), str(seed)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"building the causal LM failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    folder = Path(out)
    absent = [name for name in CAUSAL_LM_FILES if not (folder / name).is_file()]
    if absent:
        raise RuntimeError(f"the causal LM export lacks {', '.join(absent)}")
    return folder


def swap_weights_in_place(bin_path: str | os.PathLike[str], seed: int = 1) -> None:
    """Overwrite an IR ``.bin`` in place with other weights of exactly the same size.

    This is the deployment mistake OpenVINO's own cache check misses: same path,
    same ``.xml``, same ``.bin`` size, different bytes.

    :param bin_path: the IR weights file to overwrite.
    :param seed: the random seed of the new bytes (any seed other than the model's).
    """
    import numpy as np

    path = Path(bin_path)
    size = path.stat().st_size
    data = (np.random.default_rng(seed).standard_normal(size // 4 + 1).astype(np.float32) * 0.05).tobytes()[:size]
    with open(path, "r+b") as handle:
        handle.write(data)


def build_sample_repository(
    root: str | os.PathLike[str],
    models: dict[str, int] | None = None,
    size_mb: float = 1.0,
    kind: str = "mlp",
) -> Path:
    """A model repository ``<root>/<model>/<version>/model.xml`` for the demo.

    ``models`` maps a model name to how many versions it gets; each version has
    its own weights (seeded by name and version) so versions really differ.
    ``kind`` is ``mlp`` (fast to compile) or ``transformer`` (compiles several
    times slower than it loads from cache, like real models).
    Versions that exist already are left as they are.

    :param root: the repository root.
    :param models: model name to number of versions; default ``{"classifier": 2, "detector": 1}``.
    :param size_mb: about how many MiB of weights each version has.
    :param kind: ``mlp`` or ``transformer``.
    :returns: ``root``.
    """
    import zlib

    root = Path(root)
    for name, versions in (models or {"classifier": 2, "detector": 1}).items():
        for version in range(1, versions + 1):
            target = root / name / str(version) / "model.xml"
            if target.exists():
                continue
            seed = zlib.crc32(f"{name}/{version}".encode())
            if kind == "transformer":
                width = max(32, int((size_mb * (1 << 20) / 4 / 12 / 8) ** 0.5) // 4 * 4)
                build_transformer(target, layers=8, width=width, seed=seed)
            else:
                build_ir(target, size_mb=size_mb, seed=seed)
    return root
