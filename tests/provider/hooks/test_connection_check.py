"""The connection form's Test button, against the real agent: each thing a task needs, and the field to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ovcache.hooks.ovcache import OvcacheHook


@pytest.fixture
def conn(airflow_db: Path, ovcache_conn, repo: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(**overrides: object) -> OvcacheHook:
        settings = {"cache_dir": tmp_path / "cache", "repository": repo, "devices": "CPU", **overrides}
        ovcache_conn("ovc_test", host="infer-07", **settings)
        return OvcacheHook("ovc_test")

    return make


def test_a_good_host_passes_with_a_summary_of_each_check(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "cache").mkdir()
    ok, message = conn().test_connection()
    assert ok, message
    assert "host infer-07" in message and "schema 2" in message
    assert f"cache_dir {tmp_path / 'cache'}: 0 blob(s)" in message
    assert "repository" in message and "2 model(s)" in message
    assert "devices CPU present and can cache" in message


def test_a_cache_path_that_is_a_file_fails_naming_cache_dir(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The regression of issue 17: the agent answered, so the Test said ok, and every nightly run failed."""
    (tmp_path / "cache").write_text("not a directory")
    ok, message = conn().test_connection()
    assert not ok
    assert message.startswith("cache_dir (connection ovc_test): ")
    assert "is a file, not a directory" in message and "\n" not in message


def test_a_cache_directory_not_made_yet_is_fine(conn) -> None:  # type: ignore[no-untyped-def]
    ok, message = conn().test_connection()
    assert ok and "does not exist yet (the first warm creates it)" in message


def test_an_unreadable_repository_fails_naming_repository(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok, message = conn(repository=tmp_path / "no-models").test_connection()
    assert not ok and message.startswith("repository (connection ovc_test): ") and "does not exist" in message


def test_a_device_the_host_lacks_fails_naming_devices(conn) -> None:  # type: ignore[no-untyped-def]
    ok, message = conn(devices="CPU,GPU").test_connection()
    assert not ok and message.startswith("devices (connection ovc_test): ") and "'GPU' is not present" in message
    assert "available devices: CPU" in message


def test_a_missing_agent_fails_naming_agent_command(conn, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok, message = conn(agent_command=str(tmp_path / "nowhere" / "ovcache")).test_connection()
    assert not ok and message.startswith("agent_command (connection ovc_test): ") and "was not found" in message


def test_a_connection_that_cannot_be_read_fails_without_raising(airflow_db: Path) -> None:
    ok, message = OvcacheHook("ovc_never_defined").test_connection()
    assert not ok and "ovc_never_defined" in message
