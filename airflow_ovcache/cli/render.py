"""Tables for people. Rich is imported here only, when a table is actually printed."""

from __future__ import annotations

import sys
from typing import Any

from ..core.text import human_bytes
from ..protocol import EvidenceState, VerifyStatus, WarmStatus

STATUS_STYLE: dict[str, str] = {
    VerifyStatus.OK: "green",
    WarmStatus.WARMED: "green",
    WarmStatus.UNCHANGED: "cyan",
    WarmStatus.SKIPPED: "yellow",
    WarmStatus.FAILED: "bold red",
    VerifyStatus.ORPHAN: "yellow",
}


def _console() -> Any:
    from rich.console import Console

    # A log file is not a terminal; keep the table wide enough to stay one row per entry.
    return Console(width=None if sys.stdout.isatty() else 160, soft_wrap=False)


def _text(value: Any) -> str:
    """A value from input as a table cell: control characters escaped, and no rich markup (``[red]`` stays text)."""
    from rich.markup import escape

    from ..core.text import printable

    return escape(printable("-" if value is None else value))


def _style(status: str) -> str:
    return STATUS_STYLE.get(status, "red")


# "load ms" is a compile following the entry's profile, in a fresh process: it speaks for
# the profile. Whether the server read the blob is the "served" column (the evidence).
PROFILE_LOAD = "profile load ms"
EVIDENCE_STYLE: dict[str, str] = {
    EvidenceState.SERVED: "green",
    EvidenceState.NOT_SERVED_YET: "yellow",
    EvidenceState.UNKNOWN: "dim",
}


def served_cell(row: dict[str, Any]) -> str:
    """The "served" column: the entry's evidence, or what an orphan says about who wrote it.

    :param row: a verify or status row.
    """
    if row.get("server_compiled"):
        shadows = row.get("shadows")
        return "[bold yellow]server compiled something else[/]" + (f" (shadows {_text(shadows)})" if shadows else "")
    ev = row.get("evidence")
    if not isinstance(ev, dict):
        return "-"
    state = str(ev.get("state"))
    if state == EvidenceState.NOT_SERVED_YET and ev.get("seconds") is not None:
        from ..core.evidence import Evidence

        text = Evidence(state, "", seconds=float(ev["seconds"])).short()
    elif state == EvidenceState.UNKNOWN:
        text = f"unknown: {ev.get('reason') or ''}"
    else:
        text = state
    return f"[{EVIDENCE_STYLE.get(state, 'dim')}]{_text(text)}[/]"


def _table(title: str, columns: list[str]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def warm_table(items: list[dict[str, Any]], summary: dict[str, int]) -> None:
    """Print a warm's items and summary as a table.

    :param items: the result's ``items`` (warm_item shapes).
    :param summary: counts per warm status.
    """
    table = _table(
        "warm", ["model", "version", "device", "status", "blob", "size", "compile (s, agent-timed)", PROFILE_LOAD, "reason"]
    )
    for it in items:
        table.add_row(
            _text(it["model"]),
            str(it["version"]) if it.get("version") is not None else "-",
            _text(it["device"]),
            f"[{_style(it['status'])}]{it['status']}[/]",
            _text(it.get("blob") or "-"),
            human_bytes(it.get("size")),
            f"{it['compile_seconds']:.3f}" if it.get("compile_seconds") is not None else "-",
            f"{it['load_ms']:.1f}" if it.get("load_ms") is not None else "-",
            _text(it.get("reason") or ""),
        )
    console = _console()
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in summary.items()))


def verify_table(rows: list[dict[str, Any]], summary: dict[str, int]) -> None:
    """Print verify rows and their summary as a table.

    :param rows: verify_entry shapes.
    :param summary: counts per verify status.
    """
    table = _table("verify", ["model", "version", "device", "status", "served", "blob", "size", PROFILE_LOAD, "reason"])
    for row in rows:
        table.add_row(
            _text(row.get("model") or "-"),
            str(row["version"]) if row.get("version") is not None else "-",
            _text(row.get("device") or "-"),
            f"[{_style(row['status'])}]{row['status']}[/]",
            served_cell(row),
            _text(row.get("blob") or "-"),
            human_bytes(row.get("size")),
            f"{row['load_ms']:.1f}" if row.get("load_ms") is not None else "-",
            _text(row.get("reason") or ""),
        )
    console = _console()
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in summary.items()) or "no entries")
    _server_compiled(console, rows)


def _server_compiled(console: Any, rows: list[dict[str, Any]]) -> None:
    """Say it in words: an orphan a server wrote after a warm-up means the warm-up replayed the wrong call."""
    for row in rows:
        if row.get("server_compiled"):
            console.print(
                f"[bold yellow]server compiled something else[/]: {_text(row.get('blob'))} "
                f"({human_bytes(row.get('size'))}, written {_text(row.get('mtime'))}, runtime {_text(row.get('runtime'))})"
                + (f", most likely instead of {_text(row['shadows'])}" if row.get("shadows") else "")
                + f": {_text(row.get('hint') or '')}"
            )


def invalidate_table(plan: dict[str, Any], applied: dict[str, Any] | None, dry_run: bool) -> None:
    """Print an invalidation plan and what was removed.

    :param plan: the result's ``plan``.
    :param applied: the result's ``applied`` (None on a dry run).
    :param dry_run: nothing was removed.
    """
    title = "invalidate (dry run: nothing removed)" if dry_run else "invalidate"
    table = _table(title, ["action", "reason", "model", "version", "device", "blob", "size", "detail"])
    for rem in plan["removals"]:
        action = "remove" if rem["delete_file"] else "forget"
        table.add_row(
            action,
            rem["reason"],
            _text(rem.get("model") or "-"),
            str(rem["version"]) if rem.get("version") is not None else "-",
            _text(rem.get("device") or "-"),
            _text(rem.get("blob") or "-"),
            human_bytes(rem.get("size")),
            _text(rem.get("detail") or ""),
        )
    console = _console()
    console.print(table)
    verb = "would free" if dry_run else "freed"
    freed = plan["bytes_freed"] if dry_run or applied is None else applied["bytes_freed"]
    line = f"{len(plan['removals'])} removal(s); {verb} {human_bytes(freed)}; {len(plan['kept'])} entr(ies) kept"
    if plan.get("budget") is not None:
        line += f"; budget {human_bytes(plan['budget'])} {'met' if plan['budget_met'] else 'NOT met'}"
    console.print(line)
    if applied and applied["skipped"]:
        for skip in applied["skipped"]:
            console.print(f"[yellow]skipped[/] {_text(skip.get('blob'))}: {_text(skip['why'])}")


def status_table(status: dict[str, Any]) -> None:
    """Print the ``status`` result: entries, orphans and totals.

    :param status: the status result.
    """
    table = _table(
        f"cache {status['cache_dir']}",
        ["model", "version", "device", "blob", "size", "present", "served", "verified", PROFILE_LOAD],
    )
    for row in status["entries"]:
        table.add_row(
            _text(row["model"]),
            str(row["version"]),
            _text(row["device"]),
            _text(row["blob"]),
            human_bytes(row["size"]),
            "yes" if row["present"] else "[red]NO[/]",
            served_cell(row),
            row["verified"] or "never",
            f"{row['load_ms']:.1f}" if row.get("load_ms") is not None else "-",
        )
    for orphan in status["orphans"]:
        table.add_row(
            "[yellow]orphan[/]",
            "-",
            "-",
            _text(orphan["blob"]),
            human_bytes(orphan["size"]),
            "yes",
            served_cell(orphan),
            "-",
            "-",
        )
    console = _console()
    console.print(table)
    console.print(
        f"{status['blob_count']} blob(s), {human_bytes(status['total_bytes'])}; {len(status['entries'])} managed entr(ies), {len(status['orphans'])} orphan(s)"
    )
    _server_compiled(console, status["orphans"])


def devices_table(devices: list[dict[str, Any]]) -> None:
    """Print the ``devices`` result's devices.

    :param devices: one dict per device.
    """
    table = _table("devices", ["device", "name", "architecture", "can cache", "class", "capabilities"])
    for dev in devices:
        table.add_row(
            _text(dev["name"]),
            _text(dev["full_name"]),
            _text(dev.get("architecture") or "-"),
            "[green]yes[/]" if dev["can_cache"] else "[red]no[/]",
            _text(dev.get("class_key") or "-"),
            _text(" ".join(dev["capabilities"])),
        )
    console = _console()
    console.print(table)
    # What each key was made from, so two hosts' keys can be compared part by part.
    for dev in devices:
        parts = dev.get("class_parts") or {}
        if parts:
            console.print(f"[bold]{_text(dev['name'])}[/] class {_text(dev.get('class_key') or '-')}:")
            for name, value in parts.items():
                console.print(f"  {_text(name)} = {_text(value)}")


def models_table(result: dict[str, Any]) -> None:
    """Print the ``models`` result: versions and what the policy selects.

    :param result: the models result.
    """
    table = _table(f"repository {result['repository']}", ["model", "versions", "selected by policy"])
    for model in result["models"]:
        table.add_row(
            _text(model["name"]), " ".join(map(str, model["versions"])) or "-", " ".join(map(str, model["selected"])) or "-"
        )
    console = _console()
    console.print(table)
    for problem in result["problems"]:
        console.print(f"[yellow]ignored[/] {_text(problem)}")
