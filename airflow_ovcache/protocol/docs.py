"""Write (or check) the generated tables of ``docs/agent-json.md``.

The prose of that page is hand-written; the tables between
``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->`` come from the
protocol, so a status or evidence key added here shows up there.
``python -m airflow_ovcache.protocol.docs`` rewrites them; ``--check`` exits 1
when the page is out of date (the test suite does the same).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from .codes import REPAIRABLE_STATUSES, ErrorCode, VerifyStatus
from .generated import write_or_check
from .shapes import EVIDENCE_KEYS

DOC_FILE = Path(__file__).resolve().parents[2] / "docs" / "agent-json.md"


def _table(header: tuple[str, str], rows: list[tuple[str, str]]) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "| --- | --- |"]
    lines += [f"| {left} | {right} |" for left, right in rows]
    return "\n".join(lines)


def evidence_table() -> str:
    """The keys of a verify or status entry's ``evidence`` object and what each means."""
    return _table(("key", "meaning"), [(f"`{key}`", meaning) for key, (_, meaning) in EVIDENCE_KEYS.items()])


def verify_status_table() -> str:
    """Every verify status, and whether a warm repairs it."""
    return _table(
        ("status", "a warm repairs it"),
        [(f"`{status}`", "yes" if status in REPAIRABLE_STATUSES else "no") for status in VerifyStatus],
    )


def error_code_list() -> str:
    """The envelope error's codes, as one line."""
    return ", ".join(f"`{code}`" for code in ErrorCode)


TABLES: dict[str, Callable[[], str]] = {
    "evidence": evidence_table,
    "verify-statuses": verify_status_table,
    "error-codes": error_code_list,
}


def render(text: str) -> str:
    """The page with every generated section replaced by what the protocol says now.

    :param text: the page as it is.
    :raises ValueError: a section named in :data:`TABLES` has no markers on the page.
    """
    for name, build in TABLES.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end generated: {name} -->)", re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise ValueError(f"docs/agent-json.md has no '<!-- generated: {name} -->' section")
        text = text[: match.end(1)] + build() + "\n" + text[match.start(2) :]
    return text


def main(argv: list[str] | None = None) -> int:
    """Rewrite the page's generated sections, or with ``--check`` report whether they are current.

    :param argv: command-line arguments (default ``sys.argv[1:]``).
    :return: 0, or 1 when ``--check`` finds the page out of date.
    """
    return write_or_check(DOC_FILE, render(DOC_FILE.read_text()), "airflow_ovcache.protocol.docs", argv)


if __name__ == "__main__":
    raise SystemExit(main())
