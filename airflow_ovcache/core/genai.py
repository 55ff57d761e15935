"""The ``genai`` serving profile: OpenVINO GenAI's own ``LLMPipeline``, as the server constructs it.

A server built on OpenVINO GenAI loads a model version folder (``openvino_model.xml``
and ``.bin``, ``openvino_tokenizer.xml``, ``openvino_detokenizer.xml``, ``config.json``,
``generation_config.json``) with::

    pipe = openvino_genai.LLMPipeline(version_dir, "CPU", CACHE_DIR=...)

GenAI reads the IR, rewrites it for its own scheduler (on CPU the default backend is
continuous batching with paged attention) and compiles the model *object*, so its blob
is neither a plain compile's nor optimum-intel's. The only faithful warm-up is that very
constructor: the agent calls it in a fresh process through :mod:`.pyloader`'s child,
with the pipeline kind the server uses (``pipeline`` in the profile options), the
server's device and properties and ``CACHE_DIR`` pointing at the private staging folder,
and publishes every blob the load wrote as one entry.

Measured with openvino-genai 2026.4.1 on CPU (docs/serving-profiles.md): with the
default attention backend (paged attention) every ``LLMPipeline`` load that finds the
blob opens it, fails to import it, unlinks it and writes a new one under the same name
(OpenVINO's core removes a cache entry it cannot import and compiles again): no load is
served from the cache, whatever was warmed. With ``ATTENTION_BACKEND=SDPA`` among the
properties the blob is imported and left untouched. The agent does not hide this: a
load check counts a blob replaced under its own name as a miss (:mod:`.loadcheck`).

This module imports openvino_genai only inside :func:`load` (the child's side), so the
core and the other profiles run on a host without the ``genai`` extra, and such a host
gets a one-line error naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..protocol.location import Location

# The pipeline kinds the agent can construct. LLMPipeline(models_path, device, **properties) reads
# openvino_model.xml and the tokenizer IRs from one folder; the siblings (VLMPipeline, WhisperPipeline,
# Text2ImagePipeline ...) read other files and are not managed yet.
PIPELINES: tuple[str, ...] = ("LLMPipeline",)
# The language model GenAI compiles with CACHE_DIR (src/cpp/src/utils.cpp reads "openvino_model.xml").
MODEL_FILE = "openvino_model.xml"
# Properties LLMPipeline takes for itself rather than passing to the device (names in libopenvino_genai's
# utils: ATTENTION_BACKEND picks "PA" (continuous batching, paged attention) or "SDPA" (the stateful model)).
PIPELINE_PROPERTIES: frozenset[str] = frozenset({"ATTENTION_BACKEND"})
INSTALL_HINT = "pip install 'airflow-ovcache[genai]' on this host"


def check_pipeline(name: Any, where: Location | None = None) -> str:
    """The profile's ``pipeline``, checked against :data:`PIPELINES`; raises :class:`UsageError` otherwise.

    :param name: the ``pipeline`` option (``LLMPipeline``).
    :param where: host/model/version/device for the error.
    """
    from .errors import UsageError

    if name not in PIPELINES:
        raise UsageError(
            f"genai profile: pipeline {name!r} is not one the agent knows (known: {', '.join(PIPELINES)})",
            hint=f"set pipeline to the kind the server constructs: one of {', '.join(PIPELINES)}",
            where=where,
        )
    return str(name)


def load(options: dict[str, Any], model_dir: str, device: str, properties: dict[str, str], where: Location) -> Any:
    """``openvino_genai.<pipeline>(model_dir, device, **properties)`` in this process (the child's side).

    Returns ``None``: GenAI does not expose its compiled model, so a hit is judged by the blobs.

    :param options: the profile's options: ``pipeline``.
    :param model_dir: the version folder, exactly as the server passes it: the blob name depends on this path.
    :param device: the device to compile for.
    :param properties: the pipeline properties, ``CACHE_DIR`` among them.
    :param where: host/model/version/device for the errors.
    """
    from .errors import CompileFailed, UsageError

    name = check_pipeline(options.get("pipeline"), where)
    try:
        import openvino_genai
    except Exception as exc:  # noqa: BLE001 - a missing or broken install: either way the extra is what to fix
        raise UsageError(
            f"genai profile: openvino_genai cannot be imported ({type(exc).__name__}: {exc})", hint=INSTALL_HINT, where=where
        ) from None
    pipeline_class = getattr(openvino_genai, name)
    try:
        # The properties go to the pipeline as keyword arguments, as a server writes
        # LLMPipeline(path, device, CACHE_DIR=...); GenAI hands them to compile_model.
        pipeline_class(model_dir, device, **dict(properties))
    except Exception as exc:  # noqa: BLE001 - whatever the library raises for a folder it cannot load
        # OpenVINO's messages start with "Exception from <file>:<line>:" and "Check ... failed at": skip to the reason.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        text = next((line for line in lines if not line.startswith(("Exception from", "Check "))), lines[0] if lines else "")
        raise CompileFailed(
            f"genai profile: {name}({model_dir}) raised {type(exc).__name__}: {text}",
            where,
            hint="check that the version folder is an OpenVINO GenAI export "
            "(openvino_model.xml, openvino_tokenizer.xml, openvino_detokenizer.xml)",
        ) from None
    return None


def loaded_from_cache(compiled: Any) -> bool | None:
    """Always ``None``: a pipeline hides its ``CompiledModel``; the caller compares the blobs instead.

    :param compiled: what :func:`load` returned.
    """
    return None
