"""The optimum profile end to end through the hook: a local-transport connection, the real agent, optimum-intel's own load.

The tiny encoder is tests/core/test_optimum.py's, built once per session by its ``encoder`` fixture
(which skips, or fails under CI, without the optimum extra). The connection says ``profile`` and
``model_class``; the hook, the agent and optimum-intel do the rest, and optimum-intel itself, in a
process of its own, then loads the folder from the warmed cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.hooks.ovcache import OvcacheHook
from tests.conftest import blobs_in
from tests.core.test_optimum import CLASS, OFFLINE, _repo, _served_from_cache, encoder  # noqa: F401 - encoder: the fixture


def test_the_hook_warms_what_optimum_intel_reads(
    airflow_db: Path,
    ovcache_conn: Any,
    encoder: Path,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in OFFLINE.items():
        if key != "OVCACHE_HOST":  # the connection names the host
            monkeypatch.setenv(key, value)  # the agent, a child of this process, never reaches a model hub
    repo = _repo(encoder, tmp_path, "enc")
    cache = tmp_path / "cache"
    ovcache_conn(
        "ovc_embed", host="embed-01", transport="local", cache_dir=cache, repository=repo, profile="optimum", model_class=CLASS
    )

    report = OvcacheHook("ovc_embed").warm(models=["enc"], confirm=True)

    (item,) = report.items
    assert (report.host, item.model, item.version, item.device) == ("embed-01", "enc", 1, "CPU")
    assert item.status == "warmed" and item.loaded_from_cache is True, item
    blobs = {p.name for p in blobs_in(cache)}
    assert blobs
    assert _served_from_cache(repo / "enc" / "1", cache)  # optimum-intel's own load, with nothing of ours, hits it
    assert {p.name for p in blobs_in(cache)} == blobs  # ... and wrote no blob of its own
    again = OvcacheHook("ovc_embed").warm(models=["enc"])
    assert [i.status for i in again.items] == ["unchanged"]
