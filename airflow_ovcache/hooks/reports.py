"""Typed per-command reports built on a parsed agent run (:class:`~.envelope.AgentRun`).

The reports keep what an operator or sensor needs and drop the rest;
``to_xcom()`` gives the compact, JSON-serialisable dict a task returns.

Schema 2 adds evidence from the server's side; schema 1 envelopes (agents from
before it) still parse, with the evidence fields left ``None``. Two kinds of
proof must not be confused when reading these results: ``loaded_from_cache`` and
``load_ms`` come from a compile *following the entry's profile* in a fresh
process (it proves the profile's call hits the blob), while ``evidence_state``
(``served`` / ``not-served-yet`` / ``unknown``) is what the cache directory shows
about the real server.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..core.text import printable
from ..protocol import REPAIRABLE_STATUSES, EvidenceState, VerifyStatus, WarmStatus
from .envelope import AgentFailure, AgentRun, opt_int

# -- warm -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmItem:
    model: str
    version: int | None  # None: the model has no usable version folder at all
    device: str
    status: str  # warmed | unchanged | skipped | failed
    reason: str = ""
    blob: str | None = None
    size: int | None = None
    compile_seconds: float | None = None
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    error: AgentFailure | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WarmItem:
        error = data.get("error")
        return cls(
            model=str(data["model"]),
            version=opt_int(data.get("version")),
            device=str(data["device"]),
            status=str(data["status"]),
            reason=str(data.get("reason") or ""),
            blob=data.get("blob"),
            size=opt_int(data.get("size")),
            compile_seconds=data.get("compile_seconds"),
            loaded_from_cache=data.get("loaded_from_cache"),
            load_ms=data.get("load_ms"),
            error=AgentFailure.from_json(error) if isinstance(error, dict) else None,
        )

    @property
    def failed(self) -> bool:
        return self.status == WarmStatus.FAILED

    def describe(self) -> str:
        version = "(no version folder)" if self.version is None else self.version
        return printable(f"model {self.model}, version {version}, device {self.device}")

    def to_xcom(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "device": self.device,
            "status": self.status,
            "blob": self.blob,
            "size": self.size,
        }
        if self.compile_seconds is not None:
            data["compile_seconds"] = self.compile_seconds
        if self.loaded_from_cache is not None:
            data["loaded_from_cache"] = self.loaded_from_cache
            data["load_ms"] = self.load_ms
        if self.status in (WarmStatus.FAILED, WarmStatus.SKIPPED):
            data["reason"] = self.reason
        return data


@dataclass
class WarmReport:
    host: str
    cache_dir: str
    repository: str
    items: list[WarmItem]
    summary: dict[str, int]
    warnings: list[str]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> WarmReport:
        res = run.result
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            repository=str(res.get("repository", "")),
            items=[WarmItem.from_json(i) for i in res.get("items", [])],
            summary={k: int(v) for k, v in (res.get("summary") or {}).items()},
            warnings=[str(w) for w in res.get("warnings", [])],
            seconds=run.seconds,
        )

    @property
    def failed(self) -> list[WarmItem]:
        return [i for i in self.items if i.failed]

    def to_xcom(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "repository": self.repository,
            "summary": self.summary,
            "items": [i.to_xcom() for i in self.items],
            "seconds": self.seconds,
        }


# -- verify -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyEntry:
    """One row of ``verify``: a managed entry, or an orphan blob.

    ``loaded_from_cache``/``load_ms`` are the load check's (a compile following
    the entry's profile); ``evidence_*`` say whether anyone else read the blob
    since it was published; ``server_compiled`` marks an orphan written after a
    warm-up by a process that compiled a call no warm-up made.
    """

    status: str
    reason: str
    model: str | None = None
    version: int | None = None
    device: str | None = None
    blob: str | None = None
    size: int | None = None
    loaded_from_cache: bool | None = None
    load_ms: float | None = None
    # The agent's word on whether a warm fixes it (older agents: by status); a blob another
    # process rewrote under another key is not, whatever its status.
    repairable: bool = False
    evidence_state: str | None = None  # served | not-served-yet | unknown; None from a schema 1 agent
    evidence_reason: str | None = None
    evidence_since: str | None = None  # when the entry was published
    evidence_at: str | None = None  # served: when it was read
    evidence_seconds: float | None = None  # not-served-yet: seconds since publishing
    server_compiled: bool | None = None
    shadows: str | None = None  # the entry key a server-compiled orphan most likely stands in for
    mtime: str | None = None
    runtime: str | None = None
    hint: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VerifyEntry:
        status = str(data["status"])
        raw = data.get("evidence")
        ev: dict[str, Any] = raw if isinstance(raw, dict) else {}
        seconds = ev.get("seconds")
        return cls(
            evidence_state=ev.get("state"),
            evidence_reason=ev.get("reason"),
            evidence_since=ev.get("since"),
            evidence_at=ev.get("at"),
            evidence_seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
            server_compiled=data.get("server_compiled"),
            shadows=data.get("shadows"),
            mtime=data.get("mtime"),
            runtime=data.get("runtime"),
            hint=data.get("hint"),
            repairable=bool(data["repairable"]) if "repairable" in data else status in REPAIRABLE_STATUSES,
            status=str(data["status"]),
            reason=str(data.get("reason") or ""),
            model=data.get("model"),
            version=opt_int(data.get("version")),
            device=data.get("device"),
            blob=data.get("blob"),
            size=opt_int(data.get("size")),
            loaded_from_cache=data.get("loaded_from_cache"),
            load_ms=data.get("load_ms"),
        )

    @property
    def ok(self) -> bool:
        return self.status == VerifyStatus.OK

    def describe(self) -> str:
        if self.model is None:
            return printable(f"blob {self.blob}")
        return printable(f"model {self.model}, version {self.version}, device {self.device}")

    @property
    def served(self) -> dict[str, Any] | None:
        """The evidence in brief: ``{"state": ..., "at" | "seconds" | "reason": ...}``; None without evidence."""
        if self.evidence_state is None:
            return None
        data: dict[str, Any] = {"state": self.evidence_state}
        if self.evidence_state == EvidenceState.SERVED:
            data["at"] = self.evidence_at
        elif self.evidence_state == EvidenceState.NOT_SERVED_YET:
            data["seconds"] = self.evidence_seconds
        else:
            data["reason"] = self.evidence_reason
        return data

    def served_text(self) -> str:
        """The evidence as words for a log line or a report cell."""
        from ..core.evidence import Evidence

        if self.evidence_state is None:
            return "no evidence (agent too old)"
        if self.evidence_state == EvidenceState.UNKNOWN:
            return f"unknown ({self.evidence_reason or 'no reason given'})"
        return Evidence(self.evidence_state, "", seconds=self.evidence_seconds).short()

    def to_xcom(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "version": self.version,
            "device": self.device,
            "status": self.status,
            "blob": self.blob,
        }
        if self.size is not None:
            data["size"] = self.size
        if self.load_ms is not None:
            data["load_ms"] = self.load_ms
        if self.served is not None:
            data["served"] = self.served
        if self.server_compiled:
            data.update(server_compiled=True, shadows=self.shadows, mtime=self.mtime, runtime=self.runtime, hint=self.hint)
        if self.loaded_from_cache is not None:
            data["loaded_from_cache"] = self.loaded_from_cache  # the report's "served from cache"
        if not self.ok:
            data["reason"] = self.reason
        return data


@dataclass
class VerifyReport:
    host: str
    cache_dir: str
    entries: list[VerifyEntry]
    summary: dict[str, int]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> VerifyReport:
        res = run.result
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            entries=[VerifyEntry.from_json(e) for e in res.get("entries", [])],
            summary={k: int(v) for k, v in (res.get("summary") or {}).items()},
            seconds=run.seconds,
        )

    @property
    def problems(self) -> list[VerifyEntry]:
        return [e for e in self.entries if not e.ok]

    @property
    def repairable(self) -> list[VerifyEntry]:
        return [e for e in self.problems if e.repairable and e.model is not None]

    def to_xcom(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "ok": not self.problems,
            "summary": self.summary,
            "problems": len(self.problems),
            "entries": [e.to_xcom() for e in self.entries],
            "repairable": [{"model": e.model, "version": e.version, "device": e.device} for e in self.repairable],
            "seconds": self.seconds,
        }


# -- rewarm ----------------------------------------------------------------------------------


@dataclass
class RewarmReport:
    """What the nightly repair found, rebuilt, and could not fix on one host."""

    host: str
    cache_dir: str
    found: list[VerifyEntry]
    rewarmed: list[WarmItem]
    after: list[VerifyEntry]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> RewarmReport:
        res = run.result
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            found=[VerifyEntry.from_json(e) for e in res.get("found", [])],
            rewarmed=[WarmItem.from_json(i) for i in res.get("rewarmed", [])],
            after=[VerifyEntry.from_json(e) for e in res.get("after", [])],
            seconds=run.seconds,
        )

    @property
    def unrepaired(self) -> list[VerifyEntry]:
        """Entries still not ok; an orphan blob is reported but is not a repair failure."""
        return [e for e in self.after if not e.ok and e.status != VerifyStatus.ORPHAN]

    @staticmethod
    def _counts(entries: list[VerifyEntry]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.status] = counts.get(entry.status, 0) + 1
        return dict(sorted(counts.items()))

    def to_xcom(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "ok": not self.unrepaired,
            "found_summary": self._counts(self.found),
            "after_summary": self._counts(self.after),
            "found": [e.to_xcom() for e in self.found],
            "rewarmed": [i.to_xcom() for i in self.rewarmed],
            "after": [e.to_xcom() for e in self.after],
            "unrepaired": [e.to_xcom() for e in self.unrepaired],
            "seconds": self.seconds,
        }


# -- invalidate -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Removal:
    reason: str  # retired | stale | foreign | orphan | budget | missing
    detail: str
    blob: str | None
    size: int
    model: str | None = None
    version: int | None = None
    device: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Removal:
        return cls(
            reason=str(data.get("reason", "")),
            detail=str(data.get("detail", "")),
            blob=data.get("blob"),
            size=int(data.get("size") or 0),
            model=data.get("model"),
            version=opt_int(data.get("version")),
            device=data.get("device"),
        )

    def to_xcom(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "detail"}


@dataclass
class InvalidateReport:
    host: str
    cache_dir: str
    dry_run: bool
    policy: str
    removals: list[Removal]
    bytes_before: int
    bytes_after: int
    bytes_freed: int
    budget_met: bool
    removed: list[Removal]
    skipped: list[dict[str, Any]]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> InvalidateReport:
        res = run.result
        plan = res.get("plan") or {}
        applied = res.get("applied") or {}
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            dry_run=bool(res.get("dry_run")),
            policy=str(res.get("policy", "")),
            removals=[Removal.from_json(r) for r in plan.get("removals", [])],
            bytes_before=int(plan.get("bytes_before") or 0),
            bytes_after=int(plan.get("bytes_after") or 0),
            bytes_freed=int((applied or plan).get("bytes_freed") or 0),
            budget_met=bool(plan.get("budget_met", True)),
            removed=[Removal.from_json(r) for r in applied.get("removed", [])],
            skipped=[{"blob": s.get("blob"), "why": s.get("why")} for s in applied.get("skipped", [])],
            seconds=run.seconds,
        )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "dry_run": self.dry_run,
            "policy": self.policy,
            "removals": [r.to_xcom() for r in self.removals],
            "removed": len(self.removed),
            "skipped": self.skipped,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "bytes_freed": self.bytes_freed,
            "budget_met": self.budget_met,
            "seconds": self.seconds,
        }


# -- devices, models, version, status ---------------------------------------------------------


@dataclass(frozen=True)
class DeviceReport:
    name: str
    full_name: str
    capabilities: tuple[str, ...]
    can_cache: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceReport:
        return cls(
            name=str(data["name"]),
            full_name=str(data.get("full_name") or ""),
            capabilities=tuple(str(c) for c in data.get("capabilities", [])),
            can_cache=bool(data.get("can_cache")),
        )

    def to_xcom(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "full_name": self.full_name,
            "can_cache": self.can_cache,
            "capabilities": list(self.capabilities),
        }


@dataclass
class DevicesReport:
    host: str
    runtime: str
    devices: list[DeviceReport]

    @classmethod
    def from_run(cls, run: AgentRun) -> DevicesReport:
        res = run.result
        return cls(
            host=run.host,
            runtime=str(res.get("runtime", "")),
            devices=[DeviceReport.from_json(d) for d in res.get("devices", [])],
        )

    def find(self, name: str) -> DeviceReport | None:
        for device in self.devices:
            if device.name == name:
                return device
        return None


@dataclass(frozen=True)
class ModelVersions:
    name: str
    versions: tuple[int, ...]
    selected: tuple[int, ...]
    latest: int | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersions:
        return cls(
            name=str(data["name"]),
            versions=tuple(int(v) for v in data.get("versions", [])),
            selected=tuple(int(v) for v in data.get("selected", [])),
            latest=opt_int(data.get("latest")),
        )


@dataclass
class ModelsReport:
    host: str
    repository: str
    policy: str
    models: list[ModelVersions]
    problems: list[str]

    @classmethod
    def from_run(cls, run: AgentRun) -> ModelsReport:
        res = run.result
        return cls(
            host=run.host,
            repository=str(res.get("repository", "")),
            policy=str(res.get("policy", "")),
            models=[ModelVersions.from_json(m) for m in res.get("models", [])],
            problems=[str(p) for p in res.get("problems", [])],
        )

    def find(self, name: str) -> ModelVersions | None:
        for model in self.models:
            if model.name == name:
                return model
        return None


@dataclass(frozen=True)
class AgentVersion:
    host: str
    agent_version: str
    schema_version: int
    openvino: str
    python: str

    @classmethod
    def from_run(cls, run: AgentRun) -> AgentVersion:
        res = run.result
        return cls(
            host=run.host,
            agent_version=str(res.get("agent_version", run.agent_version)),
            schema_version=int(res.get("schema_version", run.schema_version)),
            openvino=str(res.get("openvino", "")),
            python=str(res.get("python", "")),
        )
