"""The tiny causal LM of the genai tier: ``samples.build_causal_lm`` at its default size, built offline.

Kept here so the tier states its prerequisites (:func:`missing`) and the offline
environment its children need (:data:`OFFLINE`) in one place.
"""

from __future__ import annotations

from pathlib import Path

from airflow_ovcache.samples import build_causal_lm, causal_lm_missing

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def missing() -> str | None:
    """What the builder lacks on this host, or ``None`` when it can build."""
    return causal_lm_missing()


def build(out: Path, work: Path) -> Path:
    """Build the tiny LM (2 layers, 32 wide) into ``out``; ``work`` holds the PyTorch checkpoint.

    :param out: the folder to export to.
    :param work: a scratch folder for the transformers checkpoint.
    """
    return build_causal_lm(out, work)
