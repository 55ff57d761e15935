"""Version policy, in OpenVINO Model Server's vocabulary: latest N, specific, all.

The same words as OVMS so that a team can copy the policy from its model server
configuration; the same policy decides what is warmed and what is retained.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from .errors import UsageError
from .values import is_int, version_numbers

PolicyKind = Literal["all", "latest", "specific"]


@dataclass(frozen=True)
class VersionPolicy:
    """Which versions of a model are served, and so warmed and retained: ``latest`` N, ``specific`` ones, or ``all``.

    Build one with :meth:`parse`; ``str()`` gives the short form back (``latest:2``)
    and :meth:`to_json` the OVMS ``model_version_policy`` object.
    """

    kind: PolicyKind = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int] | set[int] | tuple[int, ...]) -> list[int]:
        """The versions of ``available`` that this policy serves, ascending.

        :param available: the version numbers present (duplicates ignored).
        """
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
        """Parse ``all``, ``latest``, ``latest:N``, ``specific:1,3`` or the OVMS JSON form.

        Raises :class:`UsageError` for anything else; a wrong type is refused, never coerced.

        :param text: the short form, the OVMS object as JSON text, or that object already parsed.
        """
        if isinstance(text, dict):
            return cls._from_ovms(text)
        if not isinstance(text, str):
            raise UsageError(f"version policy {text!r} is not a policy", hint="use all, latest, latest:N or specific:V1,V2")
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
    def _from_ovms(cls, data: Any) -> VersionPolicy:
        """OVMS's ``model_version_policy`` object, read with its types: ``versions`` is a list of numbers.

        A wrong type is refused, never coerced: ``{"specific": {"versions": "12"}}``
        would otherwise retain versions 1 and 2 and retire 12, the one meant.
        """
        if not isinstance(data, dict) or len(data) != 1:
            raise UsageError(f"version policy {data!r} must have exactly one of all, latest, specific")
        ((kind, body),) = data.items()
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise UsageError(f'version policy {data!r}: {kind} must be an object, for example {{"{kind}": {{}}}}')
        allowed = {"all": set(), "latest": {"num_versions"}, "specific": {"versions"}}.get(kind)
        if allowed is None:
            raise UsageError(
                f"unknown version policy {data!r}", hint="use all, latest or specific (OpenVINO Model Server's words)"
            )
        unknown = set(body) - allowed
        if unknown:
            raise UsageError(f"version policy {data!r}: unknown key(s) {', '.join(sorted(map(str, unknown)))} in {kind}")
        if kind == "all":
            return cls("all")
        if kind == "latest":
            n = body.get("num_versions", 1)
            if not is_int(n) or n <= 0:
                raise UsageError(f"version policy {data!r}: num_versions must be a positive whole number, not {n!r}")
            return cls("latest", num_versions=int(n))
        try:
            versions = tuple(sorted(set(version_numbers(body.get("versions"), "versions"))))
        except ValueError as exc:
            raise UsageError(f"version policy {data!r}: {exc}", hint='write {"specific": {"versions": [1, 3]}}') from None
        if not versions:
            raise UsageError(f"version policy {data!r}: specific names no version")
        return cls("specific", versions=versions)


def _positive(text: str, whole: str) -> int:
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        raise UsageError(f"version policy {whole!r}: {text!r} is not a positive integer")
    return int(text)
