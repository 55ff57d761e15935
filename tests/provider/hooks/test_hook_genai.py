"""The genai profile end to end through the hook: a local-transport connection, the real agent, GenAI's own LLMPipeline.

The tiny LM is tests/core/test_genai.py's, built once per session by its ``llm`` fixture (which
skips, or fails under CI, without the genai and optimum extras). The connection says ``profile``
and ``pipeline``; the task passes the server's ``ATTENTION_BACKEND`` as a compile property. The
hook, the agent and GenAI do the rest; GenAI itself, in a process of its own that imports nothing
of ours, then constructs the pipeline from the warmed cache and must leave every blob as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.core.test_genai import OFFLINE, SDPA_KWARGS, _cache_state, _repo, _serve, llm  # noqa: F401 - llm: the fixture


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in OFFLINE.items():
        if key != "OVCACHE_HOST":  # the connection names the host
            monkeypatch.setenv(key, value)  # the agent, a child of this process, never reaches a model hub


def _host(ovcache_conn: Any, model: Path, tmp_path: Path, host: str, **extra: str) -> tuple[Path, Path]:
    """A local connection ``ovc_llm`` to ``host``: a repository holding the tiny LM as ``llm`` v1, an empty cache."""
    repo = _repo(model, tmp_path, "llm")
    cache = tmp_path / "cache"
    ovcache_conn("ovc_llm", host=host, transport="local", cache_dir=cache, repository=repo, profile="genai", **extra)
    return repo, cache


def test_the_hook_warms_what_llmpipeline_reads_and_verifies_it(
    airflow_db: Path,
    ovcache_conn: Any,
    llm: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    offline: None,
) -> None:
    repo, cache = _host(ovcache_conn, llm, tmp_path, "llm-01", pipeline="LLMPipeline")
    hook = OvcacheHook("ovc_llm")

    report = hook.warm(models=["llm"], properties=SDPA_KWARGS, confirm=True)

    (item,) = report.items
    assert (report.host, item.model, item.version, item.device) == ("llm-01", "llm", 1, "CPU")
    assert item.status == "warmed" and item.loaded_from_cache is True, item
    warmed = _cache_state(cache)
    assert warmed
    _serve(repo / "llm" / "1", cache, SDPA_KWARGS)  # GenAI's own load, nothing of ours
    assert _cache_state(cache) == warmed  # no new blob, none rewritten
    verify = hook.verify(load_check=True)
    assert [(e.model, e.status) for e in verify.entries] == [("llm", "ok")], verify.entries
    assert _cache_state(cache) == warmed
    again = hook.warm(models=["llm"], properties=SDPA_KWARGS)
    assert [i.status for i in again.items] == ["unchanged"]


def test_the_default_backend_fails_the_confirm_in_one_line_through_the_hook(
    airflow_db: Path,
    ovcache_conn: Any,
    llm: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    offline: None,
) -> None:
    """GenAI's CPU default (paged attention) replaces its blob on every load: the hook's report says so, naming everything."""
    _host(ovcache_conn, llm, tmp_path, "llm-02")

    report = OvcacheHook("ovc_llm").warm(models=["llm"], confirm=True)

    (item,) = report.items
    assert item.status == "failed" and item.loaded_from_cache is False, item
    reason = str(item.reason)
    assert "\n" not in reason and "replaced it on load" in reason and "ATTENTION_BACKEND=SDPA" in reason, reason
    assert all(part in reason for part in ("host llm-02", "model llm", "version 1", "device CPU")), reason
