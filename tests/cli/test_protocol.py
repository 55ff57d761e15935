"""The committed contract files are what the protocol module generates, and both ends use its words."""

from __future__ import annotations

from airflow_ovcache.protocol import REPAIRABLE_STATUSES, VerifyStatus, docs, jsonschema


def test_committed_schema_is_the_generated_one() -> None:
    """cli/agent-schema.json is written by ``python -m airflow_ovcache.protocol.jsonschema``, not by hand."""
    assert jsonschema.SCHEMA_FILE.read_text() == jsonschema.render()


def test_docs_tables_are_the_generated_ones() -> None:
    """The tables of docs/agent-json.md are written by ``python -m airflow_ovcache.protocol.docs``."""
    text = docs.DOC_FILE.read_text()
    assert docs.render(text) == text


def test_repairable_statuses_are_verify_statuses() -> None:
    """The set the hook falls back on for old agents names only statuses verify can report."""
    assert set(VerifyStatus) >= REPAIRABLE_STATUSES
