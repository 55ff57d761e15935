"""The agent's command lines, built from request types alone: no agent, no connection, no Airflow run."""

from __future__ import annotations

import pytest

from airflow_ovcache.hooks.commands import (
    DevicesRequest,
    InvalidateRequest,
    ModelsRequest,
    RequestError,
    RewarmRequest,
    StatusRequest,
    VerifyRequest,
    WarmRequest,
    agent_argv,
    command_args,
    devices_argv,
    invalidate_argv,
    models_argv,
    rewarm_argv,
    status_argv,
    verify_argv,
    warm_argv,
)
from airflow_ovcache.protocol.location import Location

BASE = ["--cache-dir", "/c", "--repository", "/r"]


def test_agent_argv_puts_json_and_host_name_first() -> None:
    assert agent_argv("warm", ["--x"]) == ["warm", "--json", "--x"]
    assert agent_argv("warm", ["--x"], "infer-03") == ["warm", "--json", "--host-name", "infer-03", "--x"]


def test_warm_minimal() -> None:
    assert warm_argv(WarmRequest("/c", "/r")) == BASE


@pytest.mark.parametrize(
    ("fields", "extra"),
    [
        ({"models": ("a", "b")}, ["--model", "a", "--model", "b"]),
        ({"versions": "all"}, ["--versions", "all"]),
        ({"version_numbers": (1, 3)}, ["--version-number", "1", "--version-number", "3"]),
        ({"versions": "all", "version_numbers": (2,)}, ["--version-number", "2"]),
        ({"devices": ("CPU", "GPU")}, ["--device", "CPU", "--device", "GPU"]),
        ({"properties": {"PERFORMANCE_HINT": "LATENCY"}}, ["--property", "PERFORMANCE_HINT=LATENCY"]),
        ({"compile_mode": "model"}, ["--compile-mode", "model"]),
        ({"cache_mode": "OPTIMIZE_SIZE"}, ["--cache-mode", "OPTIMIZE_SIZE"]),
        ({"model_file": "m.xml"}, ["--model-file", "m.xml"]),
        ({"encryption_key_file": "/k"}, ["--encryption-key-file", "/k"]),
        ({"serving_config": "/s.toml"}, ["--config", "/s.toml"]),
        ({"profile": "python"}, ["--profile", "python"]),
        ({"profile": "openvino"}, []),
        ({"loader": "pkg:load"}, ["--loader", "pkg:load"]),
        ({"loader_path": "/l"}, ["--loader-path", "/l"]),
        (
            {"profile": "optimum", "model_class": "OVModelForFeatureExtraction"},
            ["--profile", "optimum", "--model-class", "OVModelForFeatureExtraction"],
        ),
        ({"no_cache_device": "skip"}, ["--no-cache-device", "skip"]),
        ({"confirm": True}, ["--confirm"]),
        ({"force": True}, ["--force"]),
    ],
)
def test_warm_flags(fields: dict[str, object], extra: list[str]) -> None:
    assert warm_argv(WarmRequest("/c", "/r", **fields)) == BASE + extra  # type: ignore[arg-type]


def test_warm_with_an_ovms_config_passes_no_compile_arguments() -> None:
    request = WarmRequest(
        "/c",
        "/r",
        devices=("GPU",),
        properties={"A": "1"},
        compile_mode="model",
        profile="python",
        no_cache_device="skip",
        ovms_config="/o.json",
        ovms_path_map=(("/models", "/srv/models"),),
    )
    assert warm_argv(request) == BASE + [
        "--ovms-config",
        "/o.json",
        "--ovms-path-map",
        "/models=/srv/models",
        "--no-cache-device",
        "skip",
    ]


@pytest.mark.parametrize(
    ("cache_dir", "repository", "missing"), [(None, "/r", "cache_dir"), ("", "/r", "cache_dir"), ("/c", None, "repository")]
)
def test_warm_refuses_a_missing_location(cache_dir: str | None, repository: str | None, missing: str) -> None:
    with pytest.raises(RequestError) as info:
        warm_argv(WarmRequest(cache_dir, repository))
    assert info.value.missing and info.value.argument == missing


@pytest.mark.parametrize("number", [0, -1, "x", 10**18])
def test_warm_refuses_a_bad_version_number(number: object) -> None:
    with pytest.raises(RequestError) as info:
        warm_argv(WarmRequest("/c", "/r", version_numbers=(number,)))  # type: ignore[arg-type]
    assert not info.value.missing and info.value.argument == "version_numbers"
    assert str(info.value).startswith("argument version_numbers: ")


def test_warm_location_names_the_request() -> None:
    assert WarmRequest("/c", "/r").location("h") == Location("h", "(all in the repository)", "latest:1", "CPU")
    assert WarmRequest("/c", "/r", models=("a", "b"), versions="all", devices=("GPU",)).location("h") == Location(
        "h", "a, b", "all", "GPU"
    )
    assert WarmRequest("/c", "/r", version_numbers=(1, 2), ovms_config="/o").location("h") == Location(
        "h", "(all in the repository)", "1, 2", "(from the OVMS config)"
    )


def test_verify_flags() -> None:
    assert verify_argv(VerifyRequest("/c")) == ["--cache-dir", "/c"]
    request = VerifyRequest("/c", model="m", version=2, device="CPU", load_check=True, infer_check=True, checksum="full")
    assert verify_argv(request) == [
        "--cache-dir",
        "/c",
        "--model",
        "m",
        "--version",
        "2",
        "--device",
        "CPU",
        "--load-check",
        "--infer-check",
        "--checksum",
        "full",
    ]
    assert request.location("h") == Location("h", "m", "2", "CPU")


def test_verify_refusals() -> None:
    with pytest.raises(RequestError) as info:
        verify_argv(VerifyRequest(None))
    assert info.value.missing and info.value.argument == "cache_dir"
    with pytest.raises(RequestError) as info:
        verify_argv(VerifyRequest("/c", version=0))
    assert info.value.argument == "version" and not info.value.missing


def test_rewarm_flags() -> None:
    assert rewarm_argv(RewarmRequest("/c")) == ["--cache-dir", "/c", "--load-check"]
    assert rewarm_argv(RewarmRequest("/c", load_check=False, confirm=False)) == ["--cache-dir", "/c", "--no-confirm"]
    with pytest.raises(RequestError, match="no cache_dir given"):
        rewarm_argv(RewarmRequest(None))


def test_invalidate_flags() -> None:
    assert invalidate_argv(InvalidateRequest("/c")) == ["--cache-dir", "/c"]
    request = InvalidateRequest(
        "/c",
        models=("m",),
        versions="latest:2",
        stale=False,
        foreign=False,
        orphans=True,
        orphan_min_age=60,
        max_bytes="1K",
        dry_run=True,
        ovms_config="/o.json",
    )
    assert invalidate_argv(request) == [
        "--cache-dir",
        "/c",
        "--model",
        "m",
        "--versions",
        "latest:2",
        "--no-stale",
        "--no-foreign",
        "--orphans",
        "--orphan-min-age",
        "60.0",
        "--max-bytes",
        "1024",
        "--dry-run",
    ]
    assert request.location("h") == Location("h", "m", "latest:2")


def test_invalidate_keeps_the_ovms_policies_only_without_versions() -> None:
    request = InvalidateRequest("/c", ovms_config="/o.json", ovms_path_map=(("/a", "/b"),))
    assert invalidate_argv(request) == ["--cache-dir", "/c", "--ovms-config", "/o.json", "--ovms-path-map", "/a=/b"]


@pytest.mark.parametrize(
    ("fields", "argument"),
    [
        ({"orphan_min_age": -1}, "orphan_min_age"),
        ({"orphan_min_age": float("nan")}, "orphan_min_age"),
        ({"max_bytes": "20X"}, "max_bytes"),
        ({"max_bytes": "inf"}, "max_bytes"),
    ],
)
def test_invalidate_refuses_bad_numbers(fields: dict[str, object], argument: str) -> None:
    with pytest.raises(RequestError) as info:
        invalidate_argv(InvalidateRequest("/c", **fields))  # type: ignore[arg-type]
    assert info.value.argument == argument and not info.value.missing


def test_status_devices_models() -> None:
    assert status_argv(StatusRequest("/c")) == ["--cache-dir", "/c"]
    with pytest.raises(RequestError, match="no cache_dir given"):
        status_argv(StatusRequest(None))
    assert devices_argv(DevicesRequest()) == []
    assert devices_argv(DevicesRequest(("CPU", "NPU"))) == ["--device", "CPU", "--device", "NPU"]
    assert DevicesRequest(("CPU", "NPU")).location("h") == Location("h", device="CPU, NPU")
    assert models_argv(ModelsRequest("/r")) == ["--repository", "/r", "--versions", "all"]
    assert models_argv(ModelsRequest("/r", ("m",), "latest:1")) == [
        "--repository",
        "/r",
        "--versions",
        "latest:1",
        "--model",
        "m",
    ]
    with pytest.raises(RequestError, match="no repository given"):
        models_argv(ModelsRequest(None))


def test_command_args_dispatches_on_the_request_type() -> None:
    assert command_args(StatusRequest("/c")) == status_argv(StatusRequest("/c"))
    assert command_args(WarmRequest("/c", "/r", force=True)) == BASE + ["--force"]
    assert {r.command for r in (WarmRequest("/c", "/r"), VerifyRequest("/c"), ModelsRequest("/r"))} == {
        "warm",
        "verify",
        "models",
    }
