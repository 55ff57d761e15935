"""``ovcache release``'s command line, built from a ReleaseRequest alone, and read back by the agent's own parser."""

from __future__ import annotations

import pytest

from airflow_ovcache.cli.parser import build_parser
from airflow_ovcache.hooks.commands import ReleaseRequest, RequestError, command_args, release_argv
from airflow_ovcache.protocol.location import Location

BASE = ["--cache-dir", "/c", "--repository", "/r"]


def _request(**fields: object) -> ReleaseRequest:
    return ReleaseRequest(**{"cache_dir": "/c", "repository": "/r", "model": "mlp", "version": 3, **fields})  # type: ignore[arg-type]


def test_release_minimal() -> None:
    assert release_argv(_request()) == [*BASE, "--model", "mlp", "--version", "3"]
    assert command_args(_request()) == release_argv(_request())


@pytest.mark.parametrize(
    ("fields", "extra"),
    [
        ({"devices": ("CPU", "GPU")}, ["--device", "CPU", "--device", "GPU"]),
        ({"properties": {"PERFORMANCE_HINT": "LATENCY"}}, ["--property", "PERFORMANCE_HINT=LATENCY"]),
        ({"compile_mode": "model"}, ["--compile-mode", "model"]),
        ({"cache_mode": "OPTIMIZE_SIZE"}, ["--cache-mode", "OPTIMIZE_SIZE"]),
        ({"model_file": "m.xml"}, ["--model-file", "m.xml"]),
        ({"serving_config": "/s.toml"}, ["--config", "/s.toml"]),
        ({"encryption_key_file": "/k"}, ["--encryption-key-file", "/k"]),
        (
            {"profile": "python", "loader": "pkg:load", "loader_path": "/l"},
            ["--profile", "python", "--loader", "pkg:load", "--loader-path", "/l"],
        ),
        (
            {"profile": "optimum", "model_class": "OVModelForFeatureExtraction"},
            ["--profile", "optimum", "--model-class", "OVModelForFeatureExtraction"],
        ),
        ({"force": True}, ["--force"]),
        ({"retain": "latest:2"}, ["--retain", "latest:2"]),
        ({"wait": 30}, ["--wait", "30.0"]),
        ({"store": "/mnt/store"}, ["--store", "/mnt/store"]),
        ({"store": "/mnt/store", "from_store": True}, ["--store", "/mnt/store", "--from-store"]),
    ],
)
def test_release_flags(fields: dict[str, object], extra: list[str]) -> None:
    argv = release_argv(_request(**fields))
    assert set(extra) <= set(argv) and len(argv) == len(BASE) + 4 + len(extra), argv
    assert build_parser().parse_args(["release", *argv]).version_number == 3  # the agent reads what the hook builds


def test_release_compiles_exactly_as_a_warm_of_the_same_settings() -> None:
    """The warm step must hit the blob a separate warm would write: same compile flags, same order."""
    from airflow_ovcache.hooks.commands import WarmRequest, warm_argv

    settings = {"devices": ("CPU",), "properties": {"NUM_STREAMS": "2"}, "cache_mode": "OPTIMIZE_SIZE", "profile": "python"}
    warm = warm_argv(WarmRequest("/c", "/r", **settings))  # type: ignore[arg-type]
    assert release_argv(_request(**settings))[: len(warm)] == warm


def test_release_with_an_ovms_config_checks_the_devices_but_passes_no_compile_arguments() -> None:
    argv = release_argv(
        _request(ovms_config="/o.json", ovms_path_map=(("/models", "/srv"),), devices=("CPU",), properties={"X": "1"})
    )
    assert argv == [
        *BASE,
        "--ovms-config",
        "/o.json",
        "--ovms-path-map",
        "/models=/srv",
        "--model",
        "mlp",
        "--version",
        "3",
        "--device",
        "CPU",
    ]
    args = build_parser().parse_args(["release", *argv])
    assert args.devices == ["CPU"] and args.properties == []


@pytest.mark.parametrize(
    ("fields", "argument"),
    [
        ({"cache_dir": None}, "cache_dir"),
        ({"repository": ""}, "repository"),
        ({"model": None}, "model"),
        ({"version": None}, "version"),
        ({"version": 0}, "version"),
        ({"version": "x"}, "version"),
        ({"wait": -1}, "wait"),
        ({"wait": float("inf")}, "wait"),
    ],
)
def test_release_refusals_name_the_argument(fields: dict[str, object], argument: str) -> None:
    with pytest.raises(RequestError) as caught:
        release_argv(_request(**fields))
    assert caught.value.argument == argument


def test_release_location_names_the_model_version_and_devices() -> None:
    assert _request(devices=("CPU", "GPU")).location("h1") == Location("h1", "mlp", "3", "CPU, GPU")
    assert _request().location("h1").device == "CPU"


def test_installing_from_a_store_needs_the_store() -> None:
    with pytest.raises(RequestError, match="from_store needs a store"):
        release_argv(_request(from_store=True))
    parsed = build_parser().parse_args(["release", *release_argv(_request(store="/s", from_store=True))])
    assert (parsed.store, parsed.from_store) == ("/s", True)
