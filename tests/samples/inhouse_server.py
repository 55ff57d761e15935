"""A sample in-house Python server's model loader, as a team would expose it to the ``python`` profile.

It prepares the model its own way before compiling (a preprocessing step that
converts u8 NHWC images, a fixed batch), so its blob name is neither the by-path
nor the by-model one: only a warm-up that calls this very function writes the
blob this server reads. Used by tests/core/test_profiles.py, and run by those
tests in a separate process exactly as the server would run it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load(model_dir: str, device: str, properties: dict[str, str]) -> Any:
    import numpy as np
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    core = ov.Core()
    (model_file,) = sorted(Path(model_dir).glob("*.xml"))
    model = core.read_model(str(model_file))
    ppp = PrePostProcessor(model)
    ppp.input().tensor().set_element_type(ov.Type.f16)
    ppp.input().preprocess().convert_element_type(ov.Type.f32).scale(np.float32(2.0))
    model = ppp.build()
    return core.compile_model(model, device, dict(properties))


def load_without_a_blob(model_dir: str, device: str, properties: dict[str, str]) -> Any:
    """A loader that compiles without the cache directory it was given: no blob is ever written."""
    import openvino as ov

    (model_file,) = sorted(Path(model_dir).glob("*.xml"))
    return ov.Core().compile_model(str(model_file), device, {})


def load_that_raises(model_dir: str, device: str, properties: dict[str, str]) -> Any:
    raise RuntimeError(f"no GPU memory for {Path(model_dir).parent.name}")
