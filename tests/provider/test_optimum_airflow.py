"""The ``optimum`` serving profile from the Airflow side: argv, connection field, hook defaults, operator, inventory, DAGs.

Nothing here compiles a model. What the hook sends is read from a small real program standing in
for the agent (it writes its argv to a file), as tests/provider/hooks/test_hook_local.py does for
failures; the warm that really loads through optimum-intel is tests/provider/hooks/test_hook_optimum.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.cli.parser import build_parser
from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.fleet.inventory import parse_fleet
from airflow_ovcache.fleet.runs import host_kwargs
from airflow_ovcache.hooks.commands import (
    InstallRequest,
    ReleaseRequest,
    RequestError,
    WarmRequest,
    install_argv,
    release_argv,
    warm_argv,
)
from tests.dags.conftest import example_dags  # noqa: F401 - the fixture
from tests.provider.conftest import load_dag

CLASS = "OVModelForFeatureExtraction"
OPTIMUM = ["--profile", "optimum", "--model-class", CLASS]


# -- the agent's command lines -------------------------------------------------------------------


def test_every_compiling_command_passes_the_profile_and_its_class_and_the_agent_reads_them() -> None:
    """warm, release and install share warm's compile flags: --model-class reaches each one's parser."""
    warm = warm_argv(WarmRequest("/c", "/r", profile="optimum", model_class=CLASS))
    release = release_argv(ReleaseRequest("/c", "/r", "enc", 1, profile="optimum", model_class=CLASS))
    install = install_argv(InstallRequest(WarmRequest("/c", "/r", profile="optimum", model_class=CLASS), "/store"))
    for command, argv in (("warm", warm), ("release", release), ("install", install)):
        start = argv.index("--profile")
        assert argv[start : start + 4] == OPTIMUM, (command, argv)
        args = build_parser().parse_args([command, *argv])
        assert (args.profile, args.model_class) == ("optimum", CLASS), command


def test_an_ovms_config_passes_neither_the_profile_nor_the_class() -> None:
    argv = warm_argv(WarmRequest("/c", "/r", profile="optimum", model_class=CLASS, ovms_config="/o.json"))
    assert "--model-class" not in argv and "--profile" not in argv


@pytest.mark.parametrize(
    ("fields", "argument", "says"),
    [
        ({"profile": "optimum"}, "model_class", "no model_class given (profile optimum needs an OVModelForXxx class"),
        ({"profile": "python", "model_class": CLASS}, "model_class", "the profile is python: set profile optimum"),
        ({"model_class": CLASS}, "model_class", "the profile is openvino: set profile optimum"),
        ({"profile": "optimum", "model_class": "OVModelForTeleportation"}, "model_class", "not an optimum-intel class"),
    ],
)
def test_the_profile_and_its_class_come_together(fields: dict[str, Any], argument: str, says: str) -> None:
    for build in (
        lambda: warm_argv(WarmRequest("/c", "/r", **fields)),
        lambda: release_argv(ReleaseRequest("/c", "/r", "enc", 1, **fields)),
    ):
        with pytest.raises(RequestError) as info:
            build()
        assert info.value.argument == argument and says in str(info.value) and "\n" not in str(info.value)


# -- the connection ------------------------------------------------------------------------------


def _conn(extra: dict[str, Any]) -> Any:
    from airflow.sdk import Connection

    return Connection(conn_id="c", conn_type="ovcache", host="embed-01", extra=json.dumps(extra))


def test_the_connection_reads_the_profile_and_its_class(airflow_db: Path) -> None:
    from airflow_ovcache.hooks.config import HostConfig

    cfg = HostConfig.from_connection(_conn({"profile": "Optimum", "model_class": CLASS}))
    assert (cfg.profile, cfg.model_class) == ("optimum", CLASS)
    form = HostConfig.from_connection(_conn({"extra__ovcache__profile": "optimum", "extra__ovcache__model_class": CLASS}))
    assert (form.profile, form.model_class) == ("optimum", CLASS)
    assert HostConfig.from_connection(_conn({})).model_class is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"profile": "optimum"},
            "connection c: field profile: optimum needs model_class (an OVModelForXxx class, e.g. OVModelForFeatureExtraction)"
            " (set model_class in the extra of connection c)",
        ),
        (
            {"profile": "python", "model_class": CLASS},
            f"field model_class: {CLASS} is the optimum profile's, but the profile is python "
            "(set profile to optimum in the extra of connection c, or remove model_class)",
        ),
        ({"model_class": CLASS}, "but the profile is openvino (not set)"),
        (
            {"profile": "optimum", "model_class": "OVModelForTeleportation"},
            "field model_class: 'OVModelForTeleportation' is not an optimum-intel class the agent knows",
        ),
        (
            {"profile": "onnxruntime"},
            "field profile: 'onnxruntime' is not a serving profile (openvino, python, optimum, genai); for OVMS set ovms_config",
        ),
    ],
)
def test_a_connection_with_half_the_profile_names_the_field(airflow_db: Path, extra: dict[str, Any], message: str) -> None:
    text = connection_refusal(extra)
    assert message in text, text


def connection_refusal(extra: dict[str, Any]) -> str:
    """The one-line error reading connection ``c`` (host embed-01) with ``extra`` raises."""
    from airflow_ovcache.hooks.config import HostConfig
    from airflow_ovcache.hooks.errors import ConnectionConfigError

    with pytest.raises(ConnectionConfigError) as err:
        HostConfig.from_connection(_conn(extra))
    text = str(err.value)
    assert text.startswith("host embed-01: connection c") and "\n" not in text, text
    return text


def test_the_connection_form_offers_the_profile_and_its_class() -> None:
    from airflow_ovcache.get_provider_info import CONN_FIELDS

    assert "optimum" in CONN_FIELDS["profile"]["schema"]["enum"]
    assert "OVModelForFeatureExtraction" in CONN_FIELDS["model_class"]["description"]


# -- the hook: what it sends, read from a stand-in agent -----------------------------------------


@pytest.fixture
def sent(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An agent command that writes its argv, one per line, and answers nothing; returns (command, reader)."""
    record = tmp_path / "argv.txt"
    script = tmp_path / "agent.sh"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {record}\nexit 2\n")
    script.chmod(0o755)

    def read() -> list[str]:
        return record.read_text().splitlines()

    return str(script), read


def _send(hook: Any, call: Any) -> None:
    from airflow_ovcache.hooks.errors import OvcacheHookError

    with pytest.raises(OvcacheHookError):  # the stand-in answers no envelope
        call(hook)


def _class_flags(argv: list[str]) -> list[str]:
    return argv[argv.index("--profile") : argv.index("--profile") + 4] if "--profile" in argv else []


def test_the_hook_sends_the_connection_s_class_with_its_profile(airflow_db: Path, ovcache_conn, sent) -> None:  # type: ignore[no-untyped-def]
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    command, argv = sent
    ovcache_conn("ovc_embed", host="embed-01", cache_dir="/c", repository="/r", profile="optimum", model_class=CLASS)
    for call in (
        lambda h: h.warm(models=["enc"]),
        lambda h: h.release(model="enc", version=1),
        lambda h: h.install(store="/store", models=["enc"]),
    ):
        _send(OvcacheHook("ovc_embed", agent_command=command), call)
        assert _class_flags(argv()) == OPTIMUM, argv()
    # A task's own class wins; a task's other profile does not inherit the connection's class.
    _send(OvcacheHook("ovc_embed", agent_command=command), lambda h: h.warm(model_class="OVModelForMaskedLM"))
    assert _class_flags(argv()) == ["--profile", "optimum", "--model-class", "OVModelForMaskedLM"]
    _send(OvcacheHook("ovc_embed", agent_command=command), lambda h: h.warm(profile="openvino"))
    assert "--model-class" not in argv() and "--profile" not in argv()


def test_the_hook_refuses_half_the_profile_before_the_agent_runs(airflow_db: Path, ovcache_conn, sent) -> None:  # type: ignore[no-untyped-def]
    from airflow_ovcache.hooks.errors import ConnectionConfigError
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    command, argv = sent
    ovcache_conn("ovc_plain", host="embed-02", cache_dir="/c", repository="/r")
    _send(OvcacheHook("ovc_plain", agent_command=command), lambda h: h.warm(profile="optimum", model_class=CLASS))
    assert _class_flags(argv()) == OPTIMUM
    with pytest.raises(ConnectionConfigError) as err:
        OvcacheHook("ovc_plain", agent_command=command).warm(profile="optimum")
    assert (
        "no model_class given (profile optimum needs an OVModelForXxx class, e.g. OVModelForFeatureExtraction): "
        "set model_class on connection ovc_plain or pass it to the operator"
    ) in str(err.value)
    with pytest.raises(ConnectionConfigError, match="the profile is python: set profile optimum"):
        OvcacheHook("ovc_plain", agent_command=command).release(model="enc", version=1, profile="python", model_class=CLASS)


# -- the operator --------------------------------------------------------------------------------


def test_operator_arguments_are_checked_when_the_dag_is_parsed() -> None:
    from airflow_ovcache.operators.warm import OvcacheWarmOperator

    warm = OvcacheWarmOperator(task_id="w", profile="optimum", model_class=CLASS)
    assert (warm.profile, warm.model_class) == ("optimum", CLASS)
    assert "model_class" in OvcacheWarmOperator.template_fields
    with pytest.raises(ValueError, match="model_class='OVModelForTeleportation' is not one of"):
        OvcacheWarmOperator(task_id="w", profile="optimum", model_class="OVModelForTeleportation")
    with pytest.raises(ValueError, match="is the optimum profile's: pass profile='optimum', not 'python'"):
        OvcacheWarmOperator(task_id="w", profile="python", model_class=CLASS)
    with pytest.raises(ValueError, match="profile='onnx' is not one of 'openvino', 'python', 'optimum'"):
        OvcacheWarmOperator(task_id="w", profile="onnx")
    # Left to the connection (its profile, its class) or to rendering.
    OvcacheWarmOperator(task_id="w", model_class=CLASS)
    OvcacheWarmOperator(task_id="w", profile="optimum")
    OvcacheWarmOperator(task_id="w", profile="{{ params.profile }}", model_class="{{ params.model_class }}")


# -- the fleet inventory and the DAGs ------------------------------------------------------------


def _fleet(**defaults: object) -> Any:
    return parse_fleet(
        {"defaults": {"cache_dir": "/c", "repository": "/r", **defaults}, "hosts": [{"name": "a"}, {"name": "b"}]}, "F"
    )


def test_the_inventory_takes_the_profile_and_its_class_and_the_dags_get_them() -> None:
    fleet = _fleet(profile="optimum", model_class=CLASS)
    assert [(h.profile, h.model_class) for h in fleet.hosts] == [("optimum", CLASS)] * 2
    kwargs = host_kwargs(fleet.hosts[0], model="enc", version=1)
    assert (kwargs["profile"], kwargs["model_class"]) == ("optimum", CLASS)
    assert _fleet().hosts[0].model_class is None and host_kwargs(_fleet().hosts[0])["model_class"] is None
    per_host = parse_fleet(
        {
            "defaults": {"cache_dir": "/c", "repository": "/r"},
            "hosts": [{"name": "a", "profile": "optimum", "model_class": CLASS}, {"name": "b"}],
        }
    )
    assert [(h.profile, h.model_class) for h in per_host.hosts] == [("optimum", CLASS), (None, None)]


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        (
            {"profile": "optimum"},
            "fleet inventory F: host a: profile optimum needs model_class "
            "(an OVModelForXxx class, e.g. OVModelForFeatureExtraction) (set model_class for host a (or in [defaults]))",
        ),
        (
            {"profile": "python", "loader": "m:f", "model_class": CLASS},
            "host a: model_class is the optimum profile's, but profile is python: "
            'set profile = "optimum" beside it, or remove model_class',
        ),
        ({"model_class": CLASS}, "host a: model_class is the optimum profile's, but profile is not set (openvino)"),
        (
            {"profile": "optimum", "model_class": "OVModelForTeleportation"},
            "host a: model_class 'OVModelForTeleportation' is not an optimum-intel class the agent knows",
        ),
        ({"profile": "onnx"}, "host a: profile must be openvino, python, optimum or genai, not 'onnx'"),
        ({"profile": "optimum", "model_class": 3}, "host a: model_class must be a string, not 3"),
    ],
)
def test_inventory_mistakes_name_the_host_and_the_key(defaults: dict[str, object], message: str) -> None:
    text = inventory_refusal(defaults)
    assert message in text, text


def inventory_refusal(defaults: dict[str, object]) -> str:
    """The one-line error a two-host inventory with these ``[defaults]`` raises."""
    with pytest.raises(UsageError) as err:
        _fleet(**defaults)
    assert "\n" not in str(err.value), str(err.value)
    return str(err.value)


def queue_dag_warms(ovcache_conn: Any, monkeypatch: pytest.MonkeyPatch, hosts: list[dict[str, Any]]) -> list[Any]:
    """The warm task of each host of ``OVCACHE_QUEUE_HOSTS`` = ``hosts`` in the queue-routed release DAG."""
    ovcache_conn("ovcache_local", transport="local")
    monkeypatch.setenv("OVCACHE_QUEUE_HOSTS", json.dumps(hosts))
    monkeypatch.setenv("OVCACHE_QUEUE_CONN_ID", "ovcache_local")
    dag = load_dag("ovcache_release_by_queue", "release_by_queue")
    return [dag.get_task(f"{host['name']}.warm") for host in hosts]


def test_the_queue_dag_gives_each_host_s_warm_its_profile_and_class(
    example_dags: Path,  # noqa: F811 - the fixture imported above
    ovcache_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = [{"name": "embed-1", "profile": "optimum", "model_class": CLASS}, {"name": "plain-1"}]
    embed, plain = queue_dag_warms(ovcache_conn, monkeypatch, hosts)
    assert (embed.profile, embed.model_class) == ("optimum", CLASS)
    assert (plain.profile, plain.model_class) == (None, None)


def test_the_release_dag_s_host_group_takes_every_host_argument() -> None:
    """on_host is mapped with host_kwargs rows: a key it lacks (model_class) fails every run, not the parse."""
    import ast

    source = Path(__file__).resolve().parents[2] / "dags" / "ovcache_release_warmup.py"
    on_host = next(n for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.FunctionDef) and n.name == "on_host")
    row = host_kwargs(_fleet(profile="optimum", model_class=CLASS).hosts[0], model="enc", version=1)
    assert {a.arg for a in on_host.args.args} == set(row)
