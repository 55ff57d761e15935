from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from airflow_ovcache.fleet.report import build_report, render_html, write_report


def _row(model: str, version: int, status: str, reason: str = "", size: int = 1 << 20, load_ms: float | None = 12.5) -> dict:  # type: ignore[type-arg]
    return {
        "model": model,
        "version": version,
        "device": "CPU",
        "spec_id": "s",
        "status": status,
        "reason": reason,
        "size": size,
        "load_ms": load_ms,
    }


RESULTS = [
    {"host": "h1", "found": [_row("m", 2, "ok")], "after": [_row("m", 2, "ok")]},
    {"host": "h2", "found": [_row("m", 2, "missing", "blob gone")], "after": [_row("m", 2, "ok")]},
    {
        "host": "h3",
        "found": [_row("m", 2, "stale-model", "files changed"), _row("d", 1, "device-missing", "no GPU")],
        "after": [
            _row("m", 2, "ok"),
            _row("d", 1, "device-missing", "no GPU"),
            {"status": "orphan", "blob": "1.blob", "model": None},
        ],
    },
    {"host": "h4", "error": "ssh: connection refused"},
]


def test_outcomes_and_problems_name_everything() -> None:
    report = build_report(RESULTS)
    assert report.counts() == {"ok": 1, "repaired": 2, "unrepaired": 1, "unreachable": 1, "host-error": 0}
    assert not report.ok
    assert report.problems() == [
        "host h4: unreachable: ssh: connection refused",
        "host h3, model d, version 1, device CPU: device-missing: no GPU",
    ]
    assert report.orphans == {"h3": 1}
    repaired = [c for c in report.cells if c.outcome == "repaired"]
    assert {(c.host, c.before) for c in repaired} == {("h2", "missing"), ("h3", "stale-model")}


def test_html_is_well_formed_and_shows_the_grid(tmp_path: Path) -> None:
    report = build_report(RESULTS)
    page = render_html(report)

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.classes: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "td":
                self.classes.append(dict(attrs).get("class") or "")

    parser = Cells()
    parser.feed(page)
    # 2 rows (m@2, d@1) x 4 hosts
    assert len(parser.classes) == 8
    assert parser.classes.count("cell unreachable") == 2
    assert "cell repaired" in parser.classes and "cell unrepaired" in parser.classes
    assert "1.0 MiB" in page and "12 ms" in page
    paths = write_report(report, tmp_path, "nightly")
    assert json.loads(Path(paths["json"]).read_text())["counts"]["repaired"] == 2
    assert Path(paths["html"]).read_text() == page


def test_escapes_what_hosts_report() -> None:
    page = render_html(build_report([{"host": "h<1>", "error": "<script>x</script>"}]))
    assert "<script>x" not in page and "&lt;script&gt;" in page


def test_a_reachable_host_with_a_broken_cache_is_not_called_unreachable() -> None:
    """On-call is sent to the host, not to the network, when the agent ran and refused."""
    results = [
        {"host": "h1", "error": "ssh: connection refused", "error_kind": "cannot-connect"},
        {"host": "h2", "error": "host h2: cache path /c is a file", "error_kind": "agent-error"},
        {"host": "h3", "error": "the agent command 'ovcache' was not found", "error_kind": "agent-missing"},
    ]
    report = build_report(results)
    assert report.unreachable.keys() == {"h1"}
    assert {h: e["kind"] for h, e in report.host_errors.items()} == {"h2": "agent-error", "h3": "agent-missing"}
    assert report.problems() == [
        "host h1: unreachable: ssh: connection refused",
        "host h2: agent ran and reported an error: host h2: cache path /c is a file",
        "host h3: agent missing or too old: the agent command 'ovcache' was not found",
    ]
    page = render_html(report)
    assert "agent ran and reported an error" in page and "agent missing or too old" in page
    assert not report.ok and report.counts()["host-error"] == 2
