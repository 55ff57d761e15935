"""What the sensors and their triggers wait for, written once for both.

Each condition knows which agent command answers it, how to read the answer
(met, or not yet and why), and which agent errors only mean "not yet" (a
cache directory nobody warmed into, a device that is not plugged in, a model
folder not created yet). Anything else is a failure and propagates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import AgentCommandError, AgentTooOld, DeviceCannotCache, EvidenceUnavailable, Target
from .ovcache import OvcacheHook
from .reports import DevicesReport, ModelsReport, VerifyEntry, VerifyReport


@dataclass(frozen=True)
class Check:
    met: bool
    message: str
    value: dict[str, Any] | None = None


class BlobCondition:
    """A valid blob exists for model@version on the host (for every device asked, or any)."""

    not_yet_codes = frozenset({"cache-dir"})

    def __init__(self, model: str, version: int, devices: list[str] | None = None, load_check: bool = False) -> None:
        self.model = model
        self.version = int(version)
        self.devices = list(devices or [])
        self.load_check = load_check

    def _kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version, "load_check": self.load_check}

    def poll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(hook.verify(**self._kwargs()))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    async def apoll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(await hook.averify(**self._kwargs()))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    def _not_yet(self, exc: AgentCommandError) -> Check:
        if exc.code in self.not_yet_codes:
            return Check(False, f"{self.model}@{self.version}: no blob yet ({exc.failure.message})")
        raise exc

    def evaluate(self, report: VerifyReport) -> Check:
        mine = [e for e in report.entries if e.model == self.model and e.version == self.version]
        status = {e.device or "?": e for e in mine}
        for entry in mine:  # an ok entry wins over a problem entry of another spec for the same device
            if entry.ok:
                status[entry.device or "?"] = entry
        wanted = self.devices or sorted(status)
        value = {
            "host": report.host,
            "cache_dir": report.cache_dir,
            "model": self.model,
            "version": self.version,
            "devices": {d: status[d].status if d in status else "not-warmed" for d in wanted},
            "blobs": {d: status[d].blob for d in wanted if d in status and status[d].ok},
        }
        label = f"{self.model}@{self.version} on host {report.host}"
        if not wanted:
            return Check(False, f"{label}: no managed blob yet", value)
        pending = [d for d in wanted if d not in status or not status[d].ok]
        if not pending:
            return Check(True, f"{label}: valid blob for {', '.join(wanted)}", value)
        why = "; ".join(f"{d}: {status[d].status} ({status[d].reason})" if d in status else f"{d}: not warmed" for d in pending)
        return Check(False, f"{label}: waiting for {why}", value)


class ServedCondition:
    """The server has read the blob of model@version on the host since it was published, for every device asked (or any).

    This is the evidence from the server's side (the blob's access time, see
    ``airflow_ovcache.core.evidence``), not a load check: it is met when some
    process other than the agent loaded the warmed blob, which is what a release
    wants to know. An entry must also verify ``ok`` (a served stale blob is no
    success). Where the host cannot tell (``unknown``: a noatime or network
    mount, an agent that cannot read without moving atimes) waiting would never
    end, so that is a failure unless ``fail_when_unknown`` is False.
    """

    not_yet_codes = frozenset({"cache-dir"})

    def __init__(self, model: str, version: int, devices: list[str] | None = None, fail_when_unknown: bool = True) -> None:
        self.model = model
        self.version = int(version)
        self.devices = list(devices or [])
        self.fail_when_unknown = fail_when_unknown

    def _kwargs(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version}

    def poll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(hook.verify(**self._kwargs()))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    async def apoll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(await hook.averify(**self._kwargs()))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    def _not_yet(self, exc: AgentCommandError) -> Check:
        if exc.code in self.not_yet_codes:
            return Check(False, f"{self.model}@{self.version}: not warmed yet ({exc.failure.message})")
        raise exc

    @staticmethod
    def _rank(entry: VerifyEntry) -> int:
        return 2 if entry.ok and entry.evidence_state == "served" else 1 if entry.ok else 0

    def evaluate(self, report: VerifyReport) -> Check:
        best: dict[str, VerifyEntry] = {}
        for entry in report.entries:  # of several specs for one device, the most advanced one speaks
            if entry.model == self.model and entry.version == self.version:
                device = entry.device or "?"
                if device not in best or self._rank(entry) > self._rank(best[device]):
                    best[device] = entry
        wanted = self.devices or sorted(best)
        value = {
            "host": report.host,
            "cache_dir": report.cache_dir,
            "model": self.model,
            "version": self.version,
            "devices": {d: (best[d].evidence_state or "no-evidence") if d in best else "not-warmed" for d in wanted},
            "served_at": {d: best[d].evidence_at for d in wanted if d in best and self._rank(best[d]) == 2},
        }
        label = f"{self.model}@{self.version} on host {report.host}"
        if not wanted:
            return Check(False, f"{label}: no managed blob yet", value)
        pending = [d for d in wanted if d not in best or self._rank(best[d]) < 2]
        if not pending:
            return Check(True, f"{label}: the server read the warmed blob for {', '.join(wanted)}", value)
        for device in pending:
            found = best.get(device)
            if found is None or not found.ok:
                continue
            entry = found
            target = Target(report.host, self.model, str(self.version), device)
            if entry.evidence_state is None:
                raise AgentTooOld(
                    target, "the agent reports no evidence of serving (envelope schema 1)", "upgrade the agent on the host"
                )
            if entry.evidence_state == "unknown" and self.fail_when_unknown:
                raise EvidenceUnavailable(target, f"cannot tell whether the server read the blob: {entry.evidence_reason}")
        why = "; ".join(
            f"{d}: not warmed"
            if d not in best
            else f"{d}: {best[d].status} ({best[d].reason})"
            if not best[d].ok
            else f"{d}: {best[d].served_text()}"
            for d in pending
        )
        return Check(False, f"{label}: waiting for the server to read it: {why}", value)


class DeviceCondition:
    """A device is present on the host and can cache compiled models (``EXPORT_IMPORT``)."""

    not_yet_codes = frozenset({"unknown-device"})

    def __init__(self, device: str, fail_when_cannot_cache: bool = True) -> None:
        self.device = device
        self.fail_when_cannot_cache = fail_when_cannot_cache

    def poll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(hook.devices([self.device]))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    async def apoll(self, hook: OvcacheHook) -> Check:
        try:
            return self.evaluate(await hook.adevices([self.device]))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    def _not_yet(self, exc: AgentCommandError) -> Check:
        if exc.code in self.not_yet_codes:
            hint = f" ({exc.failure.hint})" if exc.failure.hint else ""
            return Check(False, f"device {self.device} is not present on host {exc.target.host}{hint}")
        raise exc

    def evaluate(self, report: DevicesReport) -> Check:
        info = report.find(self.device)
        if info is None:
            return Check(False, f"device {self.device} is not present on host {report.host}")
        value = {"host": report.host, "runtime": report.runtime, **info.to_xcom()}
        if info.can_cache:
            return Check(True, f"device {info.name} ({info.full_name}) on host {report.host} can cache", value)
        message = f"device {info.name} ({info.full_name}) is present but does not report EXPORT_IMPORT (capabilities: {', '.join(info.capabilities) or 'none'})"
        if self.fail_when_cannot_cache:
            raise DeviceCannotCache(Target(report.host, device=self.device), message)
        return Check(False, f"host {report.host}: {message}", value)


class ModelVersionCondition:
    """A model version appeared in the host's repository.

    With ``version``: that version exists. With ``newer_than``: a version above it
    exists. With neither: any version exists. The value names the newest version.
    """

    def __init__(
        self, model: str, version: int | None = None, newer_than: int | None = None, repository: str | None = None
    ) -> None:
        if version is not None and newer_than is not None:
            raise ValueError("give either version or newer_than, not both")
        self.model = model
        self.version = None if version is None else int(version)
        self.newer_than = None if newer_than is None else int(newer_than)
        self.repository = repository

    def poll(self, hook: OvcacheHook) -> Check:
        return self.evaluate(hook.models(repository=self.repository))

    async def apoll(self, hook: OvcacheHook) -> Check:
        return self.evaluate(await hook.amodels(repository=self.repository))

    def evaluate(self, report: ModelsReport) -> Check:
        found = report.find(self.model)
        versions = list(found.versions) if found else []
        label = f"model {self.model} in {report.repository} on host {report.host}"
        if self.version is not None:
            hit: int | None = self.version if self.version in versions else None
            wanted = f"version {self.version}"
        elif self.newer_than is not None:
            newer = [v for v in versions if v > self.newer_than]
            hit = max(newer) if newer else None
            wanted = f"a version newer than {self.newer_than}"
        else:
            hit = max(versions) if versions else None
            wanted = "any version"
        value = {"host": report.host, "repository": report.repository, "model": self.model, "version": hit, "versions": versions}
        if hit is None:
            return Check(False, f"{label}: waiting for {wanted} (present: {', '.join(map(str, versions)) or 'none'})", value)
        return Check(True, f"{label}: version {hit} is there", value)
