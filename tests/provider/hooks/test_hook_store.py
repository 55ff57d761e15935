"""``OvcacheHook.store_put`` and ``install`` over the local transport: host a compiles and puts, host b installs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_ovcache.hooks.commands import InstallRequest, RequestError, StorePutRequest, WarmRequest, command_args
from airflow_ovcache.hooks.errors import OvcacheHookError
from airflow_ovcache.hooks.ovcache import OvcacheHook


def test_store_requests_build_the_agent_flags() -> None:
    assert command_args(StorePutRequest("/c", "/s", "mlp", 2, "CPU")) == [
        "--cache-dir", "/c", "--store", "/s", "--model", "mlp", "--version", "2", "--device", "CPU",
    ]  # fmt: skip
    warm = WarmRequest("/c", "/m", models=("mlp",), version_numbers=(2,))
    assert command_args(InstallRequest(warm, "/s")) == [
        "--cache-dir", "/c", "--repository", "/m", "--model", "mlp", "--version-number", "2", "--store", "/s",
    ]  # fmt: skip
    assert command_args(InstallRequest(warm, "/s", compile_if_unreachable=True))[-1] == "--compile-if-unreachable"
    with pytest.raises(RequestError, match="store"):
        command_args(StorePutRequest("/c", None))
    with pytest.raises(RequestError, match="confirm"):
        command_args(InstallRequest(WarmRequest("/c", "/m", confirm=True), "/s"))


def test_put_on_one_host_install_on_the_other(local_hosts: dict[str, Path], tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    host_a, host_b = OvcacheHook("ovc_host_a"), OvcacheHook("ovc_host_b")
    assert host_a.warm(models=["mlp"], confirm=True).summary["warmed"] == 1
    put = host_a.store_put(store=str(store))
    assert put.summary == {"stored": 1, "failed": 0} and put.items[0].class_key
    report = host_b.install(store=str(store), models=["mlp"])
    (item,) = report.items
    assert item.status == "installed" and item.loaded_from_cache is True and item.fallback is None
    assert item.class_key == put.items[0].class_key and report.fell_back == []
    json.dumps(report.to_xcom())
    with pytest.raises(OvcacheHookError, match="no-store"):
        host_b.install(store=str(tmp_path / "no-store"), models=["mlp"])
