"""The ``optimum`` serving profile: optimum-intel's own ``OVModelForXxx.from_pretrained``, as the server calls it.

A server built on optimum-intel loads a model version folder (``openvino_model.xml``
and ``.bin``, ``config.json``, tokenizer files) with::

    OVModelForFeatureExtraction.from_pretrained(version_dir, device="CPU", ov_config={"CACHE_DIR": ...})

optimum-intel prepares the graph before it compiles it (it reads the IR, reshapes
it to dynamic shapes, adds ``PERFORMANCE_HINT=LATENCY`` unless the config sets a
hint, and compiles the model *object*), so its blob is neither the by-path nor the
by-model blob of a plain compile. The only faithful warm-up is that very call: the
agent makes it in a fresh process through :mod:`.pyloader`'s child, with the
model class the server uses (``model_class`` in the profile options) and
``CACHE_DIR`` pointing at the private staging folder, and publishes every blob
the load wrote as one entry.

This module imports neither optimum nor torch at import time: only the child
that loads does, so the core and the other profiles run on a host without the
``optimum`` extra, and such a host gets a one-line error naming the extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..protocol.location import Location

# The classes whose from_pretrained reads one model, openvino_model.xml, from the version folder
# (optimum/intel/openvino/modeling.py and modeling_decoder.py). Classes of several models
# (seq2seq, diffusion, visual-language) name other files and are not managed yet.
MODEL_CLASSES: tuple[str, ...] = (
    "OVModelForAudioClassification",
    "OVModelForAudioFrameClassification",
    "OVModelForAudioXVector",
    "OVModelForCTC",
    "OVModelForCausalLM",
    "OVModelForCustomTasks",
    "OVModelForFeatureExtraction",
    "OVModelForImageClassification",
    "OVModelForMaskedLM",
    "OVModelForQuestionAnswering",
    "OVModelForSequenceClassification",
    "OVModelForTokenClassification",
    "OVModelForZeroShotImageClassification",
)
# optimum-intel's OV_XML_FILE_NAME: the file those classes load from a folder.
MODEL_FILE = "openvino_model.xml"
INSTALL_HINT = "pip install 'airflow-ovcache[optimum]' on this host"


def check_model_class(name: Any, where: Location | None = None) -> str:
    """The profile's ``model_class``, checked against :data:`MODEL_CLASSES`; raises :class:`UsageError` otherwise.

    :param name: the ``model_class`` option (``OVModelForFeatureExtraction`` ...).
    :param where: host/model/version/device for the error.
    """
    from .errors import UsageError

    if name not in MODEL_CLASSES:
        raise UsageError(
            f"optimum profile: model class {name!r} is not one the agent knows",
            hint=f"set model_class to the class the server loads with: one of {', '.join(MODEL_CLASSES)}",
            where=where,
        )
    return str(name)


def load(options: dict[str, Any], model_dir: str, device: str, properties: dict[str, str], where: Location) -> Any:
    """``model_class.from_pretrained(model_dir, ...)`` in this process (the child's side); errors name the profile.

    :param options: the profile's options: ``model_class``.
    :param model_dir: the version folder, as the server passes it.
    :param device: the device to compile for.
    :param properties: the ``ov_config``, ``CACHE_DIR`` among them.
    :param where: host/model/version/device for the errors.
    """
    from .errors import CompileFailed, UsageError

    name = check_model_class(options.get("model_class"), where)
    try:
        import optimum.intel as intel
    except Exception as exc:  # noqa: BLE001 - a missing or broken install: either way the extra is what to fix
        raise UsageError(
            f"optimum profile: optimum-intel cannot be imported ({type(exc).__name__}: {exc})", hint=INSTALL_HINT, where=where
        ) from None
    model_class = getattr(intel, name)
    try:
        return model_class.from_pretrained(
            model_dir, device=device, ov_config=dict(properties), compile=True, local_files_only=True
        )
    except Exception as exc:  # noqa: BLE001 - whatever the library raises for a folder it cannot load
        text = (str(exc).strip().splitlines() or [""])[0]
        raise CompileFailed(
            f"optimum profile: {name}.from_pretrained({model_dir}) raised {type(exc).__name__}: {text}",
            where,
            hint="check that the version folder is an optimum-intel export (openvino_model.xml, config.json) for this model class",
        ) from None


def compiled_models(loaded: Any) -> list[Any]:
    """The ``CompiledModel`` objects an OVModel holds: its own and its components'.

    An encoder-style model keeps the compiled model as ``request``; a decoder keeps an
    infer request there (``modeling_decoder.py``, ``compile``), whose compiled model we ask for.

    :param loaded: what ``from_pretrained`` returned.
    """
    found: list[Any] = []
    hosts = [loaded, *getattr(loaded, "components", {}).values()]
    for host in hosts:
        request = getattr(host, "request", None)
        if request is None:
            continue
        if hasattr(request, "get_compiled_model"):
            request = request.get_compiled_model()
        if hasattr(request, "get_property"):
            found.append(request)
    return found


def loaded_from_cache(compiled: Any) -> bool | None:
    """Whether every compiled model of the OVModel came from the cache; None when it holds none or a device does not say.

    :param compiled: what ``from_pretrained`` returned.
    """
    models = compiled_models(compiled)
    if not models:
        return None
    try:
        return all(bool(m.get_property("LOADED_FROM_CACHE")) for m in models)
    except Exception:  # noqa: BLE001 - a device that does not report it
        return None
