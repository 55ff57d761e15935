"""What a serving profile needs beside its name: optimum-intel's model class, OpenVINO GenAI's pipeline kind.

A profile is chosen in four places: an operator or hook argument, a connection field, a fleet
inventory key and the agent's flags. Each must refuse the same mistakes (a class without the
``optimum`` profile, that profile without a class, a pipeline kind GenAI has no constructor for)
before anything runs, and each says so in its own words (a connection field, an inventory key,
an operator argument). :func:`problem` makes the decision once; its :class:`OptionProblem` carries
the facts each caller phrases.

Imports nothing heavy: the class and pipeline names are plain tuples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .genai import PIPELINES
from .optimum import MODEL_CLASSES

# Profiles chosen by name; OpenVINO Model Server's is chosen by giving its config.json (ovms_config).
NAMED_PROFILES: tuple[str, ...] = ("openvino", "python", "optimum", "genai")
# Each option belongs to one profile; the options a profile cannot do without (GenAI's pipeline
# defaults to LLMPipeline, as the agent's --pipeline does).
OWNER: dict[str, str] = {"model_class": "optimum", "pipeline": "genai"}
REQUIRED: dict[str, str] = {"optimum": "model_class"}
KNOWN: dict[str, tuple[str, ...]] = {"model_class": MODEL_CLASSES, "pipeline": PIPELINES}
# What a value of each option is, in the words an error uses.
NOUN: dict[str, str] = {"model_class": "an optimum-intel class", "pipeline": "an OpenVINO GenAI pipeline"}
EXAMPLE: dict[str, str] = {
    "model_class": "an OVModelForXxx class, e.g. OVModelForFeatureExtraction",
    "pipeline": "a pipeline kind, e.g. LLMPipeline",
}


@dataclass(frozen=True)
class OptionProblem:
    """One mistake in a profile and its options.

    :param kind: ``profile`` (not a profile), ``unknown`` (an option's value the agent does not
        know), ``missing`` (the profile needs the option) or ``misplaced`` (the option belongs to
        another profile).
    :param key: the option at fault (``profile``, ``model_class``, ``pipeline``).
    :param value: its value, or ``None`` when missing.
    :param profile: the profile as given (``None``: not set, the default ``openvino``).
    :param owner: for ``missing`` and ``misplaced``, the profile the option belongs to.
    """

    kind: Literal["profile", "unknown", "missing", "misplaced"]
    key: str
    value: str | None
    profile: str | None
    owner: str | None = None

    @property
    def profile_text(self) -> str:
        """The profile as an error names it: ``openvino (not set)`` when none was given."""
        return self.profile or "openvino (not set)"

    @property
    def unknown_text(self) -> str:
        """For ``profile`` and ``unknown``: ``'X' is not ... the agent knows (the names it knows)``."""
        if self.kind == "profile":
            return f"{self.value!r} is not a serving profile ({', '.join(NAMED_PROFILES)})"
        return f"{self.value!r} is not {NOUN[self.key]} the agent knows ({', '.join(KNOWN[self.key])})"

    @property
    def missing_text(self) -> str:
        """For ``missing``: ``optimum needs model_class (an OVModelForXxx class, e.g. ...)``."""
        return f"{self.owner} needs {self.key} ({EXAMPLE[self.key]})"


def one_of(names: tuple[str, ...]) -> str:
    """``a, b, c or d``: choices as a sentence says them."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def problem(profile: str | None, options: Mapping[str, str | None]) -> OptionProblem | None:
    """The first mistake in ``profile`` and its ``options``, or ``None`` when the agent can be asked.

    :param profile: the profile as given, already lower-cased (``None``: not set).
    :param options: ``model_class`` and ``pipeline`` as given (``None`` or empty: not set).
    """
    if profile is not None and profile not in NAMED_PROFILES:
        return OptionProblem("profile", "profile", profile, profile)
    for key, value in options.items():
        if value and OWNER[key] != (profile or "openvino"):
            return OptionProblem("misplaced", key, value, profile, OWNER[key])
        if value and value not in KNOWN[key]:
            return OptionProblem("unknown", key, value, profile)
    needed = REQUIRED.get(profile or "")
    if needed and not options.get(needed):
        return OptionProblem("missing", needed, None, profile, profile)
    return None
