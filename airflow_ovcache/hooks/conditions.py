"""What the sensors and their triggers wait for, written once for both.

Each condition knows which agent command answers it, how to read the answer
(met, or not yet and why), and which agent errors only mean "not yet" (a
cache directory nobody warmed into, a device that is not plugged in, a model
folder not created yet). Anything else is a failure and propagates.

A condition is a dataclass whose fields are its arguments. Its trigger
serializes exactly those fields (:meth:`Condition.arguments`), under the same
names as the trigger's own constructor arguments, and a sensor builds its
trigger from the condition it pokes with: the three cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from ..protocol.location import Location
from .errors import AgentCommandError, AgentTooOld, CachingUnsupported, EvidenceUnavailable

if TYPE_CHECKING:
    # Names for the type checker only: every sensor and trigger module imports this one when a
    # DAG file is parsed, and the hook and the report readers are needed only once a task polls.
    from .ovcache import OvcacheHook
    from .reports import DevicesReport, ModelsReport, VerifyEntry, VerifyReport

ReportT = TypeVar("ReportT")


@dataclass(frozen=True)
class Check:
    """One poll's answer: met or not, what to log, and what the sensor returns for XCom.

    :param met: the condition holds; the sensor succeeds (the trigger fires).
    :param message: one line for the task log, naming the host and what is still missing.
    :param value: the sensor's XCom value (also sent while not met, for the log's sake).
    """

    met: bool
    message: str
    value: dict[str, Any] | None = None


@dataclass
class Condition(Generic[ReportT]):
    """What a sensor and its trigger wait for: one agent command, and how to read its report.

    A subclass says which command answers it (:meth:`ask` and its async twin
    :meth:`aask`), which agent error codes only mean "not yet"
    (``not_yet_codes``, with :meth:`not_yet_message`), and how to read a report
    (:meth:`evaluate`). Polling, for a sensor's poke or a trigger's loop, is
    written here once.
    """

    # Agent error codes that mean "not yet" rather than a failure; any other error propagates.
    not_yet_codes: ClassVar[frozenset[str]] = frozenset()

    # -- for subclasses -----------------------------------------------------------------------
    def ask(self, hook: OvcacheHook) -> ReportT:
        """Run the agent command that answers this condition.

        :param hook: the hook of the host to ask.
        """
        raise NotImplementedError

    async def aask(self, hook: OvcacheHook) -> ReportT:
        """Run the agent command that answers this condition, without blocking the event loop.

        :param hook: the hook of the host to ask.
        """
        raise NotImplementedError

    def evaluate(self, report: ReportT) -> Check:
        """Read the agent's report: met, or not yet and why.

        Raises an :class:`~airflow_ovcache.hooks.errors.OvcacheHookError` where waiting
        cannot end (a device that cannot cache, evidence the host cannot give).

        :param report: what :meth:`ask` returned.
        """
        raise NotImplementedError

    def not_yet_message(self, exc: AgentCommandError) -> str:
        """The log line for an agent error that only means "not yet" (a code in ``not_yet_codes``).

        :param exc: the agent's error.
        """
        return str(exc.failure.message)

    # -- shared -------------------------------------------------------------------------------
    def arguments(self) -> dict[str, Any]:
        """The fields that rebuild this condition, by name: what its trigger serializes."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def poll(self, hook: OvcacheHook) -> Check:
        """Ask the host once and read the answer (a sensor's poke).

        :param hook: the hook of the host to ask.
        """
        try:
            return self.evaluate(self.ask(hook))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    async def apoll(self, hook: OvcacheHook) -> Check:
        """Ask the host once and read the answer, from the triggerer's event loop.

        :param hook: the hook of the host to ask.
        """
        try:
            return self.evaluate(await self.aask(hook))
        except AgentCommandError as exc:
            return self._not_yet(exc)

    def _not_yet(self, exc: AgentCommandError) -> Check:
        if exc.code in self.not_yet_codes:
            return Check(False, self.not_yet_message(exc))
        raise exc


# The report types are quoted in the bases: they are imported for the type checker only (see above).
@dataclass
class EntryCondition(Condition["VerifyReport"]):
    """A condition on the managed entries of model@version in the agent's ``verify`` report, device by device.

    Of several entries for one device (one per cache spec) the most advanced one
    speaks. The condition is met when every device asked (or, with no devices,
    every device that has an entry, and at least one) has an entry that is
    ``_done``. A subclass says what done means and how it is reported.

    :param model: the model.
    :param version: the version number.
    :param devices: devices that must all be done; empty or ``None`` means any device.
    """

    model: str
    version: int
    devices: list[str] | None = None

    not_yet_codes = frozenset({"cache-dir"})
    # Whether verify runs the load check; a subclass that has the option makes it a field.
    load_check = False
    # Of equally advanced entries for one device, whether the agent's last one speaks (else its first).
    prefer_later: ClassVar[bool] = False
    # The texts of the log line: not warmed at all, met (before the devices), waiting (before why).
    not_warmed_text: ClassVar[str]
    met_text: ClassVar[str]
    waiting_text: ClassVar[str]
    # The XCom key of what the done entries show (see _done_detail).
    done_key: ClassVar[str]

    def __post_init__(self) -> None:
        self.version = int(self.version)
        self.devices = list(self.devices or [])

    # -- for subclasses -----------------------------------------------------------------------
    def _done(self, entry: VerifyEntry) -> bool:
        """Whether this device's entry is what the condition waits for.

        :param entry: the device's most advanced entry.
        """
        raise NotImplementedError

    def _state(self, entry: VerifyEntry) -> str:
        """The word for the entry in the ``devices`` mapping of the XCom value.

        :param entry: the device's most advanced entry.
        """
        raise NotImplementedError

    def _done_detail(self, entry: VerifyEntry) -> Any:
        """What a done entry shows under ``done_key`` in the XCom value.

        :param entry: a done entry.
        """
        raise NotImplementedError

    def _pending_text(self, entry: VerifyEntry) -> str:
        """Why an entry that is not done is not, for the log line.

        :param entry: the device's most advanced entry, not done.
        """
        return f"{entry.status} ({entry.reason})"

    def _refuse_waiting(self, host: str, device: str, entry: VerifyEntry) -> None:
        """Raise where waiting for this entry would never end; by default waiting always may.

        :param host: the host the report is from.
        :param device: the device of the entry.
        :param entry: the device's most advanced entry, not done.
        """

    # -- shared -------------------------------------------------------------------------------
    def ask(self, hook: OvcacheHook) -> VerifyReport:
        """Run ``verify`` for model@version on the host.

        :param hook: the hook of the host to ask.
        """
        return hook.verify(model=self.model, version=self.version, load_check=self.load_check)

    async def aask(self, hook: OvcacheHook) -> VerifyReport:
        """Run ``verify`` for model@version on the host, without blocking the event loop.

        :param hook: the hook of the host to ask.
        """
        return await hook.averify(model=self.model, version=self.version, load_check=self.load_check)

    def not_yet_message(self, exc: AgentCommandError) -> str:
        """Say that model@version is not in the host's cache at all (there is no cache directory yet).

        :param exc: the agent's ``cache-dir`` error.
        """
        return f"{self.model}@{self.version}: {self.not_warmed_text} ({exc.failure.message})"

    def _rank(self, entry: VerifyEntry) -> tuple[bool, bool]:
        return self._done(entry), entry.ok

    def best_entries(self, report: VerifyReport) -> dict[str, VerifyEntry]:
        """The most advanced entry of model@version for each device in the report.

        :param report: the agent's ``verify`` report.
        """
        mine = [e for e in report.entries if e.model == self.model and e.version == self.version]
        best: dict[str, VerifyEntry] = {}
        for entry in reversed(mine) if self.prefer_later else mine:
            device = entry.device or "?"
            if device not in best or self._rank(entry) > self._rank(best[device]):
                best[device] = entry
        return best

    def evaluate(self, report: VerifyReport) -> Check:
        """Met when every device wanted is done; otherwise say, device by device, what is missing.

        :param report: the agent's ``verify`` report.
        """
        best = self.best_entries(report)
        wanted = self.devices or sorted(best)
        value = {
            "host": report.host,
            "cache_dir": report.cache_dir,
            "model": self.model,
            "version": self.version,
            "devices": {d: self._state(best[d]) if d in best else "not-warmed" for d in wanted},
            self.done_key: {d: self._done_detail(best[d]) for d in wanted if d in best and self._done(best[d])},
        }
        label = f"{self.model}@{self.version} on host {report.host}"
        if not wanted:
            return Check(False, f"{label}: no managed blob yet", value)
        pending = [d for d in wanted if d not in best or not self._done(best[d])]
        if not pending:
            return Check(True, f"{label}: {self.met_text} {', '.join(wanted)}", value)
        for device in pending:
            if device in best:
                self._refuse_waiting(report.host, device, best[device])
        why = "; ".join(f"{d}: {self._pending_text(best[d])}" if d in best else f"{d}: not warmed" for d in pending)
        return Check(False, f"{label}: {self.waiting_text} {why}", value)


@dataclass
class BlobCondition(EntryCondition):
    """A valid blob exists for model@version on the host (for every device asked, or any).

    :param model: the model.
    :param version: the version number.
    :param devices: devices that must all have a valid blob; empty or ``None`` means any device.
    :param load_check: also require that a compile following the entry's profile loads the blob from cache.
    """

    load_check: bool = False

    # Of several valid blobs for one device, the one the agent lists last is reported (as always).
    prefer_later = True
    not_warmed_text = "no blob yet"
    met_text = "valid blob for"
    waiting_text = "waiting for"
    done_key = "blobs"

    def _done(self, entry: VerifyEntry) -> bool:
        return entry.ok

    def _state(self, entry: VerifyEntry) -> str:
        return entry.status  # ok, stale-model, ...

    def _done_detail(self, entry: VerifyEntry) -> Any:
        return entry.blob


@dataclass
class ServedCondition(EntryCondition):
    """The server has read the blob of model@version on the host since it was published, for every device asked (or any).

    This is the evidence from the server's side (the blob's access time, see
    ``airflow_ovcache.core.evidence``), not a load check: it is met when some
    process other than the agent loaded the warmed blob, which is what a release
    wants to know. An entry must also verify ``ok`` (a served stale blob is no
    success). Where the host cannot tell (``unknown``: a noatime or network
    mount, an agent that cannot read without moving atimes) waiting would never
    end, so that is a failure unless ``fail_when_unknown`` is False.

    :param model: the model.
    :param version: the version number.
    :param devices: devices whose blob must all have been read; empty or ``None`` means any device.
    :param fail_when_unknown: raise :class:`~airflow_ovcache.hooks.errors.EvidenceUnavailable` when the
        host cannot tell; False keeps waiting.
    """

    fail_when_unknown: bool = True

    not_warmed_text = "not warmed yet"
    met_text = "the server read the warmed blob for"
    waiting_text = "waiting for the server to read it:"
    done_key = "served_at"

    def _done(self, entry: VerifyEntry) -> bool:
        return entry.ok and entry.evidence_state == "served"  # a served stale blob is no success

    def _state(self, entry: VerifyEntry) -> str:
        return entry.evidence_state or "no-evidence"  # served, not-served-yet, unknown

    def _done_detail(self, entry: VerifyEntry) -> Any:
        return entry.evidence_at  # when the server read it

    def _pending_text(self, entry: VerifyEntry) -> str:
        # A valid blob is waiting for its reader ("not served yet (2.0 h)"); anything else for a warm-up.
        return entry.served_text() if entry.ok else super()._pending_text(entry)

    def _refuse_waiting(self, host: str, device: str, entry: VerifyEntry) -> None:
        # An agent without evidence (too old) or a host that cannot tell would leave the sensor waiting for ever.
        if not entry.ok:
            return
        target = Location(host, self.model, str(self.version), device)
        if entry.evidence_state is None:
            raise AgentTooOld(
                target, "the agent reports no evidence of serving (envelope schema 1)", "upgrade the agent on the host"
            )
        if entry.evidence_state == "unknown" and self.fail_when_unknown:
            raise EvidenceUnavailable(target, f"cannot tell whether the server read the blob: {entry.evidence_reason}")


@dataclass
class DeviceCondition(Condition["DevicesReport"]):
    """A device is present on the host and can cache compiled models (``EXPORT_IMPORT``).

    :param device: the OpenVINO device name (``CPU``, ``GPU``, ``GPU.1``, ``NPU``).
    :param fail_when_cannot_cache: raise :class:`~airflow_ovcache.hooks.errors.CachingUnsupported` when the
        device is present but cannot cache (waiting does not fix that); False keeps waiting.
    """

    device: str
    fail_when_cannot_cache: bool = True

    not_yet_codes = frozenset({"unknown-device"})

    def ask(self, hook: OvcacheHook) -> DevicesReport:
        """Run ``devices`` for this device on the host.

        :param hook: the hook of the host to ask.
        """
        return hook.devices([self.device])

    async def aask(self, hook: OvcacheHook) -> DevicesReport:
        """Run ``devices`` for this device on the host, without blocking the event loop.

        :param hook: the hook of the host to ask.
        """
        return await hook.adevices([self.device])

    def not_yet_message(self, exc: AgentCommandError) -> str:
        """Say that the device is not present (the agent's ``unknown-device``), with the agent's hint.

        :param exc: the agent's error.
        """
        hint = f" ({exc.failure.hint})" if exc.failure.hint else ""
        return f"device {self.device} is not present on host {exc.target.host}{hint}"

    def evaluate(self, report: DevicesReport) -> Check:
        """Met when the device is listed and can cache; fails at once if it cannot (unless told to wait).

        :param report: the agent's ``devices`` report.
        """
        info = report.find(self.device)
        if info is None:
            return Check(False, f"device {self.device} is not present on host {report.host}")
        value = {"host": report.host, "runtime": report.runtime, **info.to_xcom()}
        if info.can_cache:
            return Check(True, f"device {info.name} ({info.full_name}) on host {report.host} can cache", value)
        message = f"device {info.name} ({info.full_name}) is present but does not report EXPORT_IMPORT (capabilities: {', '.join(info.capabilities) or 'none'})"
        if self.fail_when_cannot_cache:
            raise CachingUnsupported(Location(report.host, device=self.device), message)
        return Check(False, f"host {report.host}: {message}", value)


@dataclass
class ModelVersionCondition(Condition["ModelsReport"]):
    """A model version appeared in the host's repository.

    With ``version``: that version exists. With ``newer_than``: a version above it
    exists. With neither: any version exists. The value names the newest version.
    A model folder that does not exist yet is "not yet" (no versions), not an error.

    :param model: the model's folder name in the repository.
    :param version: wait for exactly this version.
    :param newer_than: wait for a version above this one.
    :param repository: repository root on the host; ``None`` means the connection's.
    """

    model: str
    version: int | None = None
    newer_than: int | None = None
    repository: str | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.newer_than is not None:
            raise ValueError("give either version or newer_than, not both")
        self.version = None if self.version is None else int(self.version)
        self.newer_than = None if self.newer_than is None else int(self.newer_than)

    def ask(self, hook: OvcacheHook) -> ModelsReport:
        """List the host's repository.

        :param hook: the hook of the host to ask.
        """
        return hook.models(repository=self.repository)

    async def aask(self, hook: OvcacheHook) -> ModelsReport:
        """List the host's repository without blocking the event loop.

        :param hook: the hook of the host to ask.
        """
        return await hook.amodels(repository=self.repository)

    def evaluate(self, report: ModelsReport) -> Check:
        """Met when a qualifying version is there; the value names the newest one that qualifies.

        :param report: the agent's ``models`` report.
        """
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
