"""The fleet cache report: hosts x models, as an HTML page a person wants to look at, and as JSON.

Built from what each host's ``ovcache rewarm`` returned (what verify found, what
was rebuilt, what verify says afterwards) plus the hosts that could not be
reached at all. Pure Python and the standard library: it runs in a task, on a
laptop, or in a test.

Each cell also says whether the blob was *served from cache*: the evidence from
the cache directory that a process other than the agent read it since it was
published (served / not served yet, for how long / unknown, and why). An ``ok``
cell says the blob would serve the deployed model, and with a load check that
a compile following its profile loads it; only the served field speaks for the
real server. Orphans a server wrote after a warm-up ("server compiled
something else") are listed per host for a person.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.text import human_bytes, one_line, printable
from ..outcomes import NETWORK_KINDS, kind_label

# How a cell reads, from the state before and after the night's repair.
OK, REPAIRED, UNREPAIRED, UNREACHABLE, HOST_ERROR = "ok", "repaired", "unrepaired", "unreachable", "host-error"
_COLOURS = {OK: "#1b7f3b", REPAIRED: "#b7791f", UNREPAIRED: "#c53030", UNREACHABLE: "#4a5568", HOST_ERROR: "#6b46c1"}


@dataclass
class Cell:
    """One host x (model, version, device) of the report: what verify found, and after the repair.

    :param host: the host.
    :param model: the model.
    :param version: its version.
    :param device: the device the blob is for.
    :param outcome: ok, repaired or unrepaired.
    :param before: verify's status before the repair.
    :param after: verify's status after it.
    :param reason: why, in verify's words (for a repaired cell: what it was and that it was rebuilt).
    :param size: the blob's size in bytes, where known.
    :param load_ms: how long the load check's compile took.
    :param loaded_from_cache: what the load check's compile said; None where none ran.
    :param served: the served-from-cache evidence in brief.
    """

    host: str
    model: str
    version: int
    device: str
    outcome: str  # ok | repaired | unrepaired
    before: str
    after: str
    reason: str = ""
    size: int | None = None
    load_ms: float | None = None
    # What the load check's compile said (LOADED_FROM_CACHE); None where no load check ran.
    loaded_from_cache: bool | None = None
    # The evidence in brief, as the verify row carried it: {"state", "at" | "seconds" | "reason"}.
    served: dict[str, Any] | None = None

    @property
    def served_text(self) -> str:
        """served / not served yet (3 h) / unknown (why) / no evidence."""
        return served_text(self.served)

    def to_json(self) -> dict[str, Any]:
        """The cell as stored JSON, with its served text."""
        data = self.__dict__.copy()
        data["served_text"] = self.served_text
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """A cell from a stored report; unknown keys (a newer writer) are ignored.

        :param data: one of a stored report's ``cells``.
        """
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def served_text(served: dict[str, Any] | None) -> str:
    """The served-from-cache evidence as it reads: served / not served yet (3 h) / unknown (why) / no evidence.

    :param served: the evidence in brief (``state`` and ``at``, ``seconds`` or ``reason``), or None.
    """
    if not served:
        return "no evidence"
    state = served.get("state")
    if state == "served":
        return "served" + (f" (read {served['at']})" if served.get("at") else "")
    if state == "not-served-yet":
        from ..core.evidence import Evidence

        seconds = served.get("seconds")
        return Evidence(str(state), "", seconds=float(seconds) if isinstance(seconds, (int, float)) else 0.0).short()
    return f"unknown ({served.get('reason') or 'no reason given'})"


@dataclass
class FleetReport:
    """The fleet's caches after a night's verify-and-repair: every cell, and every host that failed.

    :param title: the page's title.
    :param generated: when it was built (ISO 8601, UTC).
    :param cells: one per host x managed blob.
    :param unreachable: host -> why, for hosts that could not be reached at all.
    :param host_errors: host -> kind and why, for hosts reached whose agent is missing, failed or refused.
    :param orphans: host -> how many unrecorded blobs its cache holds.
    :param hosts: every host, in order.
    :param server_compiled: host -> the orphans a server wrote after a warm-up.
    :param run: the DAG run that wrote it (see :func:`.report_store.run_stamp`); None outside Airflow.
    """

    title: str
    generated: str
    cells: list[Cell] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> why: it could not be reached at all
    # host -> {"kind", "why"}: reached, but the agent is missing, failed or refused (not a network problem)
    host_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)  # host -> count
    hosts: list[str] = field(default_factory=list)
    # host -> orphans a server wrote after a warm-up (blob, size, mtime, runtime, shadows, hint)
    server_compiled: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # The DAG run that wrote it (dag_id, run_id, ...; see report_store.run_stamp); None outside Airflow.
    run: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether nothing needs a person: every host reached, every cell ok or repaired."""
        return not self.unreachable and not self.host_errors and all(c.outcome != UNREPAIRED for c in self.cells)

    def counts(self) -> dict[str, int]:
        """How many cells of each outcome, and how many hosts unreachable or with agent errors."""
        out = {OK: 0, REPAIRED: 0, UNREPAIRED: 0}
        for cell in self.cells:
            out[cell.outcome] += 1
        out[UNREACHABLE] = len(self.unreachable)
        out[HOST_ERROR] = len(self.host_errors)
        return out

    def problems(self) -> list[str]:
        """One line per thing a person must look at, naming host, model, version and device."""
        lines = [f"host {h}: unreachable: {why}" for h, why in sorted(self.unreachable.items())]
        lines += [f"host {h}: {kind_label(e['kind'])}: {e['why']}" for h, e in sorted(self.host_errors.items())]
        lines += [
            f"host {c.host}, model {c.model}, version {c.version}, device {c.device}: {c.after}: {c.reason}"
            for c in self.cells
            if c.outcome == UNREPAIRED
        ]
        return [one_line(line) for line in lines]

    def server_compiled_lines(self) -> list[str]:
        """One line per orphan a server compiled after a warm-up: the warm-up replays a call nobody serves."""
        lines = []
        for host, rows in sorted(self.server_compiled.items()):
            for row in rows:
                shadows = f", most likely instead of {row['shadows']}" if row.get("shadows") else ""
                lines.append(
                    f"host {host}: server compiled something else: blob {row.get('blob')} ({_size(row.get('size')) or '?'}, "
                    f"written {row.get('mtime') or '?'}, runtime {row.get('runtime') or '?'}){shadows}: {row.get('hint') or ''}"
                )
        return [one_line(line) for line in lines]

    def to_json(self) -> dict[str, Any]:
        """The report as stored JSON, with its counts and problem lines."""
        return {
            "title": self.title,
            "generated": self.generated,
            "ok": self.ok,
            "counts": self.counts(),
            "hosts": self.hosts,
            "unreachable": self.unreachable,
            "host_errors": self.host_errors,
            "orphans": self.orphans,
            "server_compiled": self.server_compiled,
            "problems": self.problems(),
            "cells": [c.to_json() for c in self.cells],
            "run": self.run,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetReport:
        """A report as stored by :func:`write_report`, to render again (the UI plugin reads these).

        :param data: the stored JSON.
        """
        return cls(
            title=str(data.get("title") or "OpenVINO cache report"),
            generated=str(data.get("generated") or ""),
            cells=[Cell.from_json(c) for c in data.get("cells") or [] if isinstance(c, dict)],
            unreachable={str(k): str(v) for k, v in (data.get("unreachable") or {}).items()},
            orphans={str(k): int(v) for k, v in (data.get("orphans") or {}).items()},
            hosts=[str(h) for h in data.get("hosts") or []],
            run=data.get("run") if isinstance(data.get("run"), dict) else None,
        )


def build_report(host_results: list[dict[str, Any]], title: str = "OpenVINO cache: nightly verification") -> FleetReport:
    """The report of one night, from what each host's rewarm returned.

    :param host_results: one dict per host with ``host`` and either ``error`` (and its
        ``error_kind``) or the ``found``/``after`` rows of verify before and after the repair.
    :param title: the report's title.
    """
    report = FleetReport(title, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    for result in sorted(host_results, key=lambda r: r["host"]):
        host = result["host"]
        report.hosts.append(host)
        if result.get("error"):
            # Only a host that could not be reached is "unreachable": a reachable host whose agent
            # is missing or refused (a broken cache directory, say) is sent to the host, not the network.
            kind = result.get("error_kind")
            if kind is None or kind in NETWORK_KINDS:  # (a result of an older DAG copy says no kind)
                report.unreachable[host] = str(result["error"])
            else:
                report.host_errors[host] = {"kind": str(kind), "why": str(result["error"])}
            continue
        before = {_key(r): r for r in result.get("found", []) if r.get("model")}
        orphans = sum(1 for r in result.get("after", []) if r.get("status") == "orphan")
        if orphans:
            report.orphans[host] = orphans
        shadowing = [
            {k: r.get(k) for k in ("blob", "size", "mtime", "runtime", "shadows", "hint")}
            for r in result.get("after", [])
            if r.get("status") == "orphan" and r.get("server_compiled")
        ]
        if shadowing:
            report.server_compiled[host] = shadowing
        for row in result.get("after", []):
            if not row.get("model"):
                continue
            was = before.get(_key(row), row)
            if row["status"] != "ok":
                outcome = UNREPAIRED
            elif was["status"] != "ok":
                outcome = REPAIRED
            else:
                outcome = OK
            reason = row.get("reason") or ""
            if outcome == REPAIRED:
                reason = f"was {was['status']}: {was.get('reason') or ''}; rebuilt"
            report.cells.append(
                Cell(
                    host,
                    row["model"],
                    int(row["version"]),
                    row["device"],
                    outcome,
                    was["status"],
                    row["status"],
                    reason,
                    row.get("size"),
                    row.get("load_ms"),
                    row.get("loaded_from_cache"),
                    row.get("served") if isinstance(row.get("served"), dict) else None,
                )
            )
    return report


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("model"), row.get("version"), row.get("device"), row.get("spec_id"))


def _size(n: int | None) -> str:
    # A cell leaves an unknown (or empty) size blank rather than writing "-".
    return human_bytes(n) if n else ""


def _esc(value: object) -> str:
    # Names from the hosts (models, reasons) may carry control characters: escaped, then HTML-escaped.
    return html.escape(printable(value))


def _served(cell: Cell) -> str:
    # The load check's compile, following the entry's profile: not the server (that is the served line).
    if cell.loaded_from_cache is None:
        return ""
    return "load check: from cache" if cell.loaded_from_cache else "load check: NOT from cache"


# The page's style; the UI plugin uses it too, so a report looks the same in Airflow and on disk.
STYLE = (
    """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1a202c}
table{border-collapse:collapse} th,td{border:1px solid #cbd5e0;padding:.4em .6em;vertical-align:top}
th.row{text-align:left;background:#f7fafc} th.row span{color:#4a5568} th.row em{color:#718096;font-style:normal}
.cell{min-width:9em} .cell small{opacity:.9} .why{display:block;max-width:18em}
.none{background:#edf2f7;color:#718096}
.badge{display:inline-block;padding:.2em .6em;border-radius:1em;margin-right:.4em}
"""
    + "".join(f".{k}{{background:{v};color:#fff}}" for k, v in _COLOURS.items())
    + "\n"
)


def render_grid(report: FleetReport, heading: str = "h1") -> str:
    """The report's body (status, counts, hosts x models grid, what needs a person), every value escaped.

    :param report: the report.
    :param heading: the tag of its title (the UI's index nests it under its own ``h1``).
    """
    esc = _esc
    rows = sorted({(c.model, c.version, c.device) for c in report.cells})
    by_cell = {(c.host, c.model, c.version, c.device): c for c in report.cells}
    counts = report.counts()
    head = "".join(f"<th>{esc(h)}</th>" for h in report.hosts)
    body = []
    for model, version, device in rows:
        tds = []
        for host in report.hosts:
            if host in report.unreachable:
                tds.append(f'<td class="cell unreachable" title="{esc(report.unreachable[host])}">unreachable</td>')
                continue
            if host in report.host_errors:
                err = report.host_errors[host]
                tds.append(f'<td class="cell host-error" title="{esc(err["why"])}">{esc(kind_label(err["kind"]))}</td>')
                continue
            cell = by_cell.get((host, model, version, device))
            if cell is None:
                tds.append('<td class="cell none">not managed</td>')
                continue
            detail = " · ".join(
                x for x in (_size(cell.size), f"{cell.load_ms:.0f} ms" if cell.load_ms is not None else "", _served(cell)) if x
            )
            label = cell.after if cell.outcome != REPAIRED else f"repaired ({cell.before})"
            tds.append(
                f'<td class="cell {esc(cell.outcome)}" title="{esc(cell.reason)}"><b>{esc(label)}</b>'
                f'<br><small>{esc(detail)}</small><br><small class="served">served from cache: {esc(cell.served_text)}</small>'
                f'<br><small class="why">{esc(cell.reason)}</small></td>'
            )
        body.append(
            f"<tr><th class='row'>{esc(model)} <span>v{esc(version)}</span> <em>{esc(device)}</em></th>{''.join(tds)}</tr>"
        )
    problems = "".join(f"<li>{esc(p)}</li>" for p in report.problems() + report.server_compiled_lines()) or "<li>none</li>"
    orphan_note = ", ".join(f"{esc(h)}: {esc(n)}" for h, n in sorted(report.orphans.items())) or "none"
    # "ok" proves the blobs would serve the deployed files; whether the server read them is the served line of each cell.
    status = "All caches hold valid blobs of the deployed models." if report.ok else "Some caches need a person."
    run = report.run or {}
    stamp = (
        f'<p class="run">DAG run: <code>{esc(run.get("dag_id") or "")}</code> / <code>{esc(run.get("run_id") or "")}</code></p>'
        if run.get("run_id")
        else ""
    )
    return f"""<{heading}>{esc(report.title)}</{heading}>
{stamp}<p>{esc(status)} Generated {esc(report.generated)}.</p>
<p><span class="badge ok">{counts[OK]} ok</span><span class="badge repaired">{counts[REPAIRED]} repaired</span>
<span class="badge unrepaired">{counts[UNREPAIRED]} unrepaired</span><span class="badge unreachable">{counts[UNREACHABLE]} host(s) unreachable</span>
<span class="badge host-error">{counts[HOST_ERROR]} host(s) with agent errors</span></p>
<table class="grid"><thead><tr><th>model / version / device</th>{head}</tr></thead><tbody>
{"".join(body) or "<tr><td>no managed blobs</td></tr>"}
</tbody></table>
<h2>Needs a person</h2><ul>{problems}</ul>
<p>Unrecorded blobs (orphans) per host: {orphan_note}.</p>
<p><small>"ok" means the blob would serve the deployed model files (with a load check: a compile following its
profile loads it from cache). "served from cache" is what the cache directory shows about the real server: its blob
was read since it was published (access time; unknown on noatime or network mounts).</small></p>
"""


def render_html(report: FleetReport) -> str:
    """The report as a whole HTML page, styled like the UI's.

    :param report: the report.
    """
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(report.title)}</title>
<style>{STYLE}</style></head><body>
{render_grid(report)}</body></html>
"""


def write_report(report: FleetReport, directory: str | Path, stem: str) -> dict[str, str]:
    """Write ``<stem>.html`` and ``<stem>.json`` into ``directory``; returns their paths (or URLs).

    ``directory`` may be an object-storage URL (``s3://...``, ``file://...``): see
    :mod:`.report_store`. Each file is replaced whole, so the UI never reads half a report.

    :param report: the report.
    :param directory: the report folder, a path or an object-storage URL.
    :param stem: the file name without extension (see :func:`.report_store.stem_for_run`).
    :raises ValueError: ``stem`` is not a safe file name.
    """
    from .report_store import folder, safe_part, write_text_whole

    if safe_part(stem, 200) != stem:
        raise ValueError(f"report name {stem!r} is not a safe file name (letters, digits, '.', '_', '-')")
    root = folder(directory)
    root.mkdir(parents=True, exist_ok=True)
    html_path = root / f"{stem}.html"
    json_path = root / f"{stem}.json"
    write_text_whole(html_path, render_html(report))
    write_text_whole(json_path, json.dumps(report.to_json(), indent=1))
    return {"html": str(html_path), "json": str(json_path)}
