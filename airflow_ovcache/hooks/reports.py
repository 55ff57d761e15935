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

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from ..core.text import printable
from ..protocol import REPAIRABLE_STATUSES, EvidenceState, ReleaseStep, StepStatus, VerifyStatus, WarmStatus
from ..protocol.codes import PutStatus
from .envelope import AgentFailure, AgentRun, read_row

_Item = TypeVar("_Item", bound="WarmItem")  # WarmItem.from_json builds the subclass it is called on

# -- warm -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarmItem:
    """One item of a warm: what happened to one (model, version, device).

    :param model: the model.
    :param version: the model version (None: the model has no usable version folder, or an orphan row).
    :param device: the device.
    :param status: the status (:mod:`airflow_ovcache.protocol` words).
    :param reason: why, in words.
    :param blob: the blob file in the cache directory.
    :param size: its size in bytes.
    :param compile_seconds: how long the compile took.
    :param loaded_from_cache: whether a compile following the entry's profile loaded the blob (not proof the server does).
    :param load_ms: that compile's load time.
    :param error: the item's error, for a failed item.
    """

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
    def from_json(cls: type[_Item], data: dict[str, Any]) -> _Item:
        """Read one row of the agent's result.

        :param data: the row as parsed from JSON.
        """
        error = data.get("error")
        return read_row(cls, data, error=AgentFailure.from_json(error) if isinstance(error, dict) else None)

    @property
    def failed(self) -> bool:
        """Whether the item failed."""
        return self.status == WarmStatus.FAILED

    def describe(self) -> str:
        """What the row concerns, for a log line or an error message."""
        version = "(no version folder)" if self.version is None else self.version
        return printable(f"model {self.model}, version {version}, device {self.device}")

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
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
    """What a warm did on one host.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param repository: the model repository root.
    :param items: one row per (model, version, device).
    :param summary: counts per status.
    :param warnings: what the agent warned about.
    :param seconds: how long the command took on the host.
    """

    host: str
    cache_dir: str
    repository: str
    items: list[WarmItem]
    summary: dict[str, int]
    warnings: list[str]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> WarmReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
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
        """The items that failed."""
        return [i for i in self.items if i.failed]

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
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

    :param status: the verify status (:class:`~airflow_ovcache.protocol.VerifyStatus`).
    :param reason: why, in words.
    :param model: the model (None for an orphan blob).
    :param version: the model version (None for an orphan blob).
    :param device: the device (None for an orphan blob).
    :param blob: the blob file in the cache directory.
    :param size: its size in bytes.
    :param loaded_from_cache: whether the load check's compile loaded the blob.
    :param load_ms: that compile's load time.
    :param repairable: whether a warm fixes it (the agent's word; by status for older agents).
    :param evidence_state: ``served``, ``not-served-yet`` or ``unknown``; None from a schema 1 agent.
    :param evidence_reason: why the evidence says so.
    :param evidence_since: when the entry was published.
    :param evidence_at: ``served``: when the blob was read.
    :param evidence_seconds: ``not-served-yet``: seconds since publishing.
    :param server_compiled: an orphan written after a warm-up by a process that compiled a call no warm-up made.
    :param shadows: the entry key such an orphan most likely stands in for.
    :param mtime: an orphan's modification time.
    :param runtime: an orphan's runtime build (from its header).
    :param hint: what to check about such an orphan.
    """

    status: str
    reason: str = ""
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
        """Read one row of the agent's result.

        :param data: the row as parsed from JSON.
        """
        status = str(data["status"])
        raw = data.get("evidence")
        ev: dict[str, Any] = raw if isinstance(raw, dict) else {}
        seconds = ev.get("seconds")
        return read_row(
            cls,
            data,
            evidence_state=ev.get("state"),
            evidence_reason=ev.get("reason"),
            evidence_since=ev.get("since"),
            evidence_at=ev.get("at"),
            evidence_seconds=float(seconds) if isinstance(seconds, (int, float)) else None,
            repairable=bool(data["repairable"]) if "repairable" in data else status in REPAIRABLE_STATUSES,
        )

    @property
    def ok(self) -> bool:
        """Whether the status is ``ok``."""
        return self.status == VerifyStatus.OK

    def describe(self) -> str:
        """What the row concerns, for a log line or an error message."""
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
        """The compact, JSON-serialisable dict a task returns."""
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
    """What verify found on one host.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param entries: one row per entry or orphan blob.
    :param summary: counts per status.
    :param seconds: how long the command took on the host.
    """

    host: str
    cache_dir: str
    entries: list[VerifyEntry]
    summary: dict[str, int]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> VerifyReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
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
        """The rows that are not ok."""
        return [e for e in self.entries if not e.ok]

    @property
    def repairable(self) -> list[VerifyEntry]:
        """The problem entries a warm would fix."""
        return [e for e in self.problems if e.repairable and e.model is not None]

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
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
    """What the nightly repair found, rebuilt, and could not fix on one host.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param found: verify rows before the repair.
    :param rewarmed: the warm items of the repair.
    :param after: verify rows after the repair.
    :param seconds: how long the command took on the host.
    """

    host: str
    cache_dir: str
    found: list[VerifyEntry]
    rewarmed: list[WarmItem]
    after: list[VerifyEntry]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> RewarmReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
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
        """The compact, JSON-serialisable dict a task returns."""
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
    """One blob an invalidation plan removes, and why.

    :param reason: why, in words.
    :param detail: why, in words.
    :param blob: the blob file in the cache directory.
    :param size: its size in bytes.
    :param model: the model.
    :param version: the model version (None: the model has no usable version folder, or an orphan row).
    :param device: the device.
    """

    reason: str = ""  # retired | stale | foreign | orphan | budget | missing
    detail: str = ""
    blob: str | None = None
    size: int = 0
    model: str | None = None
    version: int | None = None
    device: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Removal:
        """Read one row of the agent's result.

        :param data: the row as parsed from JSON.
        """
        return read_row(cls, data)

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return {k: v for k, v in asdict(self).items() if k != "detail"}


@dataclass
class InvalidateReport:
    """What an invalidation planned and did on one host.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param dry_run: nothing was removed.
    :param policy: the retention policy applied.
    :param removals: what the plan removes.
    :param bytes_before: cache bytes before.
    :param bytes_after: cache bytes after the plan.
    :param bytes_freed: bytes freed (applied, else planned).
    :param budget_met: the size budget is met.
    :param removed: what was removed.
    :param skipped: removals skipped, with why.
    :param seconds: how long the command took on the host.
    """

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
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
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
        """The compact, JSON-serialisable dict a task returns."""
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
    """One device of a host and whether it can cache.

    :param name: the name.
    :param full_name: the device's full name.
    :param capabilities: the device's OPTIMIZATION_CAPABILITIES.
    :param can_cache: the device can export and import compiled blobs.
    :param class_key: the device's hardware class (``cpu-<16 hex>``): hosts with equal keys can share
        blobs for the same spec, profile and model files; empty from an agent too old to report it.
    :param class_parts: what the key was made from (runtime build, ISA, device properties), for
        telling why two hosts' keys differ.
    """

    name: str
    full_name: str = ""
    capabilities: tuple[str, ...] = ()
    can_cache: bool = False
    class_key: str = ""
    class_parts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceReport:
        """Read one row of the agent's result.

        :param data: the row as parsed from JSON.
        """
        return read_row(cls, data)

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return {
            "name": self.name,
            "full_name": self.full_name,
            "can_cache": self.can_cache,
            "capabilities": list(self.capabilities),
            "class_key": self.class_key,
            "class_parts": dict(self.class_parts),
        }


@dataclass
class DevicesReport:
    """The devices of one host.

    :param host: the host the command ran on.
    :param runtime: the OpenVINO runtime build.
    :param devices: one report per device.
    """

    host: str
    runtime: str
    devices: list[DeviceReport]

    @classmethod
    def from_run(cls, run: AgentRun) -> DevicesReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        return cls(
            host=run.host,
            runtime=str(res.get("runtime", "")),
            devices=[DeviceReport.from_json(d) for d in res.get("devices", [])],
        )

    def find(self, name: str) -> DeviceReport | None:
        """The row named ``name``, or None.

        :param name: the name to look for.
        """
        for device in self.devices:
            if device.name == name:
                return device
        return None


@dataclass(frozen=True)
class ModelVersions:
    """One model of a repository: its versions and what the policy selects.

    :param name: the name.
    :param versions: the version folders, ascending.
    :param selected: the versions the policy selects.
    :param latest: the newest version, if any.
    """

    name: str
    versions: tuple[int, ...] = ()
    selected: tuple[int, ...] = ()
    latest: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelVersions:
        """Read one row of the agent's result.

        :param data: the row as parsed from JSON.
        """
        return read_row(cls, data)


@dataclass
class ModelsReport:
    """The models of a host's repository.

    :param host: the host the command ran on.
    :param repository: the model repository root.
    :param policy: the retention policy applied.
    :param models: one row per model.
    :param problems: folders ignored and why.
    """

    host: str
    repository: str
    policy: str
    models: list[ModelVersions]
    problems: list[str]

    @classmethod
    def from_run(cls, run: AgentRun) -> ModelsReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        return cls(
            host=run.host,
            repository=str(res.get("repository", "")),
            policy=str(res.get("policy", "")),
            models=[ModelVersions.from_json(m) for m in res.get("models", [])],
            problems=[str(p) for p in res.get("problems", [])],
        )

    def find(self, name: str) -> ModelVersions | None:
        """The row named ``name``, or None.

        :param name: the name to look for.
        """
        for model in self.models:
            if model.name == name:
                return model
        return None


@dataclass(frozen=True)
class AgentVersion:
    """What ``ovcache version`` says: the versions the Airflow side checks.

    :param host: the host the command ran on.
    :param agent_version: the agent's package version.
    :param schema_version: the envelope schema version the agent speaks.
    :param openvino: the agent's OpenVINO version.
    :param python: the agent's Python version.
    """

    host: str
    agent_version: str
    schema_version: int
    openvino: str
    python: str

    @classmethod
    def from_run(cls, run: AgentRun) -> AgentVersion:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        return cls(
            host=run.host,
            agent_version=str(res.get("agent_version", run.agent_version)),
            schema_version=int(res.get("schema_version", run.schema_version)),
            openvino=str(res.get("openvino", "")),
            python=str(res.get("python", "")),
        )


# -- release ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseStepReport:
    """One step of ``ovcache release`` on one host: its status, its one-line summary, and its own report.

    :param step: the step (:class:`~airflow_ovcache.protocol.ReleaseStep`: ``version``, ``devices``,
        ``warm``, ``verify``, ``invalidate``).
    :param status: ``ok``, ``failed`` (the release stopped here) or ``not-run``.
    :param summary: what the step found or did, or why it failed, in one line.
    :param exit_code: the step's exit code, as its own command would exit; None for a step not run.
    :param seconds: how long the step took on the host.
    :param xcom: the step's result in the compact form its own task returns (a warm step's is
        :meth:`WarmReport.to_xcom`'s, and so on); None when it produced none.
    :param error: the error the step raised, if it raised one.
    """

    step: str
    status: str
    summary: str
    exit_code: int | None = None
    seconds: float = 0.0
    xcom: dict[str, Any] | None = None
    error: AgentFailure | None = None

    @property
    def ok(self) -> bool:
        """Whether the step ran and passed."""
        return self.status == StepStatus.OK

    @property
    def failed(self) -> bool:
        """Whether the release stopped at this step."""
        return self.status == StepStatus.FAILED

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return {
            "status": self.status,
            "summary": self.summary,
            "exit_code": self.exit_code,
            "seconds": self.seconds,
            "result": self.xcom,
            "error": asdict(self.error) if self.error else None,
        }


# A warm step's role in a release by hardware class, in its XCom (``role``): compiled and put, or installed.
BUILDER = "builder"
INSTALLER = "installer"


def not_stored(host: str, items: Iterable[Mapping[str, Any]]) -> list[str]:
    """One line per put item (its XCom) that was not stored, naming host, model, version and device, and why.

    :param host: the host that put.
    :param items: the put's items as XCom rows (``status``, ``reason`` and the coordinates).
    """
    return [
        f"host {host}, model {i.get('model')}, version {i.get('version')}, device {i.get('device')}: not stored: {i.get('reason')}"
        for i in items
        if i.get("status") != PutStatus.STORED
    ]


def _warm_step_xcom(sub: AgentRun, result: dict[str, Any]) -> dict[str, Any]:
    """The warm step's XCom, in the shape the per-step warm task gives it for the same role.

    With ``--from-store`` the step is an install (its result has a ``store``; a store the host could
    not reach makes each item a fallback); with ``--store`` alone a warm with the builder's ``store_put``.
    """
    if "store" in result:
        return {**InstallReport.from_run(sub).to_xcom(), "role": INSTALLER}
    xcom = WarmReport.from_run(sub).to_xcom()
    put = result.get("store_put")
    if isinstance(put, dict):
        items = [i for i in put.get("items") or [] if isinstance(i, dict)]
        problems = list(put.get("problems") or []) + not_stored(sub.host, items)
        xcom["store_put"] = {"store": put.get("store"), "items": items, "problems": problems}
        xcom["role"] = BUILDER
    return xcom


def _step_xcom(run: AgentRun, step: str, result: dict[str, Any]) -> dict[str, Any]:
    """A step's result as the report of the command of the same name gives it to XCom."""
    sub = AgentRun(step, run.host, run.ok, run.exit_code, run.agent_version, run.schema_version, 0.0, result)
    if step == ReleaseStep.WARM:
        return _warm_step_xcom(sub, result)
    if step == ReleaseStep.VERIFY:
        return VerifyReport.from_run(sub).to_xcom()
    if step == ReleaseStep.INVALIDATE:
        return InvalidateReport.from_run(sub).to_xcom()
    if step == ReleaseStep.DEVICES:
        devices = DevicesReport.from_run(sub)
        return {"host": devices.host, "runtime": devices.runtime, "devices": [d.to_xcom() for d in devices.devices]}
    return dict(result)


@dataclass
class ReleaseReport:
    """What ``ovcache release`` did on one host: each step, and the first that failed.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param repository: the model repository root.
    :param model: the model released.
    :param version: the version released.
    :param steps: every step, in order (those after a failure ``not-run``).
    :param seconds: how long the release took on the host.
    """

    host: str
    cache_dir: str
    repository: str
    model: str
    version: int
    steps: list[ReleaseStepReport]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> ReleaseReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        steps = []
        for raw in res.get("steps", []):
            step, result, error = str(raw["step"]), raw.get("result"), raw.get("error")
            steps.append(
                ReleaseStepReport(
                    step=step,
                    status=str(raw["status"]),
                    summary=str(raw.get("summary") or ""),
                    exit_code=raw.get("exit_code"),
                    seconds=float(raw.get("seconds") or 0.0),
                    xcom=_step_xcom(run, step, result) if isinstance(result, dict) else None,
                    error=AgentFailure.from_json(error) if isinstance(error, dict) else None,
                )
            )
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            repository=str(res.get("repository", "")),
            model=str(res.get("model", "")),
            version=int(res.get("version") or 0),
            steps=steps,
            seconds=run.seconds,
        )

    @property
    def failed_step(self) -> ReleaseStepReport | None:
        """The step the release stopped at, or None when every step passed."""
        return next((s for s in self.steps if s.failed), None)

    @property
    def ok(self) -> bool:
        """Whether every step ran and passed."""
        return bool(self.steps) and all(s.ok for s in self.steps)

    def step(self, name: str) -> ReleaseStepReport | None:
        """The step called ``name``, or None.

        :param name: a :class:`~airflow_ovcache.protocol.ReleaseStep` word.
        """
        return next((s for s in self.steps if s.step == name), None)

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns: each step's outcome under its name."""
        failed = self.failed_step
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "repository": self.repository,
            "model": self.model,
            "version": self.version,
            "ok": self.ok,
            "failed_step": failed.step if failed else None,
            "steps": {s.step: s.to_xcom() for s in self.steps},
            "seconds": self.seconds,
        }


# -- the blob store ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StorePutItem:
    """One manifest entry ``store-put`` was asked to store.

    :param model: the model.
    :param version: the model version.
    :param device: the device.
    :param spec_id: the entry's spec id.
    :param status: ``stored`` or ``failed``.
    :param reason: why, in words (for a failure: the one line naming host, model, version and device).
    :param class_key: the hardware class it was filed under.
    :param object: the SHA-256 the set is stored under.
    :param size: the stored object's size in bytes.
    """

    model: str
    version: int
    device: str
    spec_id: str
    status: str
    reason: str = ""
    class_key: str | None = None
    object: str | None = None
    size: int | None = None

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return asdict(self)


@dataclass
class StorePutReport:
    """What ``store-put`` did on one host (the builder).

    :param host: the host the command ran on.
    :param store: the store, as the host named it.
    :param items: one row per entry.
    :param summary: counts per status.
    :param seconds: how long the command took on the host.
    """

    host: str
    store: str
    items: list[StorePutItem]
    summary: dict[str, int]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> StorePutReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        return cls(
            host=run.host,
            store=str(res.get("store", "")),
            items=[read_row(StorePutItem, i) for i in res.get("items", [])],
            summary={k: int(v) for k, v in (res.get("summary") or {}).items()},
            seconds=run.seconds,
        )

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return {"host": self.host, "store": self.store, "summary": self.summary, "items": [i.to_xcom() for i in self.items]}


@dataclass(frozen=True)
class InstallItem(WarmItem):
    """One item of an install: what happened to one (model, version, device) on one host.

    A warm item with what the store adds (class, object, why it fell back), so the
    failure and description helpers of :class:`WarmItem` serve it too.

    :param model: the model.
    :param version: the model version.
    :param device: the device.
    :param status: ``installed``, ``warmed`` (fell back to a local compile), ``unchanged`` or ``failed``.
    :param reason: why, in words.
    :param class_key: the host's hardware class for the device.
    :param object: the stored set fetched, if any.
    :param blob: the blob file in the cache directory.
    :param size: the bytes published.
    :param fallback: why the stored set was not installed (one line naming host, model, version, device, class).
    :param compile_seconds: how long the local compile took, when it fell back.
    :param loaded_from_cache: whether a compile following the profile loaded the blob (not proof the server does).
    :param load_ms: that compile's load time.
    :param error: the item's error, for a failed item.
    """

    class_key: str | None = None
    object: str | None = None
    fallback: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns (the error as its one line)."""
        data = {k: v for k, v in asdict(self).items() if k != "error" and v is not None}
        if self.error is not None:
            data["error"] = self.reason
        return data


@dataclass
class InstallReport:
    """What an install did on one host: per item, installed from the store or compiled there, and why.

    :param host: the host the command ran on.
    :param cache_dir: the cache directory.
    :param store: the store, as the host named it.
    :param items: one row per (model, version, device).
    :param summary: counts per status.
    :param warnings: what the agent warned about.
    :param seconds: how long the command took on the host.
    """

    host: str
    cache_dir: str
    store: str
    items: list[InstallItem]
    summary: dict[str, int]
    warnings: list[str]
    seconds: float

    @classmethod
    def from_run(cls, run: AgentRun) -> InstallReport:
        """Build the report from a parsed agent run.

        :param run: the run whose ``result`` this command wrote.
        """
        res = run.result
        return cls(
            host=run.host,
            cache_dir=str(res.get("cache_dir", "")),
            store=str(res.get("store", "")),
            items=[InstallItem.from_json(i) for i in res.get("items", [])],
            summary={k: int(v) for k, v in (res.get("summary") or {}).items()},
            warnings=[str(w) for w in res.get("warnings", [])],
            seconds=run.seconds,
        )

    @property
    def failed(self) -> list[InstallItem]:
        """The items that failed (a fallback that compiled is not a failure)."""
        return [i for i in self.items if i.failed]

    @property
    def fell_back(self) -> list[InstallItem]:
        """The items compiled locally because the stored set did not pass a check."""
        return [i for i in self.items if i.fallback]

    def to_xcom(self) -> dict[str, Any]:
        """The compact, JSON-serialisable dict a task returns."""
        return {
            "host": self.host,
            "cache_dir": self.cache_dir,
            "store": self.store,
            "summary": self.summary,
            "items": [i.to_xcom() for i in self.items],
            "seconds": self.seconds,
        }
