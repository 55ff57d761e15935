"""Version policy, in OpenVINO Model Server's vocabulary: latest N, specific, all.

The same words as OVMS so that a team can copy the policy from its model server
configuration; the same policy decides what is warmed and what is retained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError

PolicyKind = Literal["all", "latest", "specific"]


@dataclass(frozen=True)
class VersionPolicy:
    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int] | set[int] | tuple[int, ...]) -> list[int]:
        """The versions of ``available`` that this policy serves, ascending."""
        ordered = sorted(set(available))
        if self.kind == "all":
            return ordered
        if self.kind == "latest":
            return ordered[-self.num_versions :] if self.num_versions > 0 else []
        wanted = set(self.versions)
        return [v for v in ordered if v in wanted]

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "latest":
            return f"latest:{self.num_versions}"
        return "specific:" + ",".join(str(v) for v in self.versions)

    def to_json(self) -> dict[str, Any]:
        """The OVMS ``model_version_policy`` form."""
        if self.kind == "all":
            return {"all": {}}
        if self.kind == "latest":
            return {"latest": {"num_versions": self.num_versions}}
        return {"specific": {"versions": list(self.versions)}}

    @classmethod
    def parse(cls, text: str | dict[str, Any]) -> VersionPolicy:
        """Parse ``all``, ``latest``, ``latest:N``, ``specific:1,3`` or the OVMS JSON form."""
        if isinstance(text, dict):
            return cls._from_ovms(text)
        raw = text.strip()
        if raw.startswith("{"):
            try:
                return cls._from_ovms(json.loads(raw))
            except json.JSONDecodeError as exc:
                raise UsageError(f"version policy {raw!r} is not valid JSON: {exc}") from None
        kind, _, arg = raw.partition(":")
        kind = kind.strip().lower()
        if kind == "all" and not arg:
            return cls("all")
        if kind == "latest":
            n = _positive(arg or "1", raw)
            return cls("latest", num_versions=n)
        if kind == "specific" and arg:
            versions = tuple(sorted({_positive(v, raw) for v in arg.split(",") if v.strip()}))
            if versions:
                return cls("specific", versions=versions)
        raise UsageError(
            f"unknown version policy {raw!r}",
            hint="use all, latest, latest:N or specific:V1,V2 (OpenVINO Model Server's words)",
        )

    @classmethod
    def _from_ovms(cls, data: dict[str, Any]) -> VersionPolicy:
        if not isinstance(data, dict) or len(data) != 1:
            raise UsageError(f"version policy {data!r} must have exactly one of all, latest, specific")
        ((kind, body),) = data.items()
        body = body or {}
        if kind == "all":
            return cls("all")
        if kind == "latest":
            return cls("latest", num_versions=_positive(str(body.get("num_versions", 1)), str(data)))
        if kind == "specific":
            versions = tuple(sorted({_positive(str(v), str(data)) for v in body.get("versions", [])}))
            if versions:
                return cls("specific", versions=versions)
        raise UsageError(f"unknown version policy {data!r}")


def _positive(text: str, whole: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise UsageError(f"version policy {whole!r}: {text!r} is not a positive integer")
    return int(text)
