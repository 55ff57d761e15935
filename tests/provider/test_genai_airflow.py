"""The ``genai`` serving profile from the Airflow side: argv, connection field, hook defaults, operator, inventory, DAGs.

Nothing here compiles a model (the warm that really constructs OpenVINO GenAI's LLMPipeline
through the hook is tests/provider/hooks/test_hook_genai.py). What the hook sends is read
from the stand-in agent of tests/provider/test_optimum_airflow.py, which writes its argv.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.cli.parser import build_parser
from airflow_ovcache.core import profile_options
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
from tests.provider.test_optimum_airflow import (  # noqa: F401 - sent: the fixture
    _conn,
    _fleet,
    _send,
    connection_refusal,
    inventory_refusal,
    queue_dag_warms,
    sent,
)

GENAI = ["--profile", "genai", "--pipeline", "LLMPipeline"]


def _genai_flags(argv: list[str]) -> list[str]:
    start = argv.index("--profile") if "--profile" in argv else len(argv)
    return argv[start : start + 4]


# -- the agent's command lines -------------------------------------------------------------------


def test_every_compiling_command_passes_the_profile_and_its_pipeline_and_the_agent_reads_them() -> None:
    warm = warm_argv(WarmRequest("/c", "/r", profile="genai", pipeline="LLMPipeline"))
    release = release_argv(ReleaseRequest("/c", "/r", "llm", 1, profile="genai", pipeline="LLMPipeline"))
    install = install_argv(InstallRequest(WarmRequest("/c", "/r", profile="genai", pipeline="LLMPipeline"), "/store"))
    for command, argv in (("warm", warm), ("release", release), ("install", install)):
        assert _genai_flags(argv) == GENAI, (command, argv)
        args = build_parser().parse_args([command, *argv])
        assert (args.profile, args.pipeline) == ("genai", "LLMPipeline"), command
    # The pipeline is optional: without one the agent constructs LLMPipeline, and no flag is sent.
    bare = warm_argv(WarmRequest("/c", "/r", profile="genai"))
    assert "--pipeline" not in bare and bare[bare.index("--profile") + 1] == "genai"


@pytest.mark.parametrize(
    ("fields", "argument", "says"),
    [
        (
            {"pipeline": "LLMPipeline"},
            "pipeline",
            "'LLMPipeline' is the genai profile's, but the profile is openvino: set profile genai",
        ),
        (
            {"profile": "optimum", "model_class": "OVModelForCausalLM", "pipeline": "LLMPipeline"},
            "pipeline",
            "profile is optimum",
        ),
        (
            {"profile": "genai", "pipeline": "VLMPipeline"},
            "pipeline",
            "'VLMPipeline' is not an OpenVINO GenAI pipeline the agent knows (LLMPipeline)",
        ),
        ({"profile": "genai", "model_class": "OVModelForCausalLM"}, "model_class", "the profile is genai: set profile optimum"),
        ({"profile": "onnx"}, "profile", "'onnx' is not a serving profile (openvino, python, optimum, genai)"),
    ],
)
def test_a_pipeline_without_its_profile_or_an_unknown_one_is_refused(fields: dict[str, Any], argument: str, says: str) -> None:
    for build in (
        lambda: warm_argv(WarmRequest("/c", "/r", **fields)),
        lambda: release_argv(ReleaseRequest("/c", "/r", "llm", 1, **fields)),
        lambda: install_argv(InstallRequest(WarmRequest("/c", "/r", **fields), "/store")),
    ):
        with pytest.raises(RequestError) as info:
            build()
        assert info.value.argument == argument and says in str(info.value) and "\n" not in str(info.value), str(info.value)


# -- the connection ------------------------------------------------------------------------------


def test_the_connection_reads_the_profile_and_its_pipeline(airflow_db: Path) -> None:
    from airflow_ovcache.hooks.config import HostConfig

    cfg = HostConfig.from_connection(_conn({"profile": "GenAI", "pipeline": "LLMPipeline"}))
    assert (cfg.profile, cfg.pipeline) == ("genai", "LLMPipeline")
    form = HostConfig.from_connection(_conn({"extra__ovcache__profile": "genai", "extra__ovcache__pipeline": "LLMPipeline"}))
    assert (form.profile, form.pipeline) == ("genai", "LLMPipeline")
    assert HostConfig.from_connection(_conn({"profile": "genai"})).pipeline is None  # the agent's default


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"pipeline": "LLMPipeline"},
            "connection c: field pipeline: LLMPipeline is the genai profile's, but the profile is openvino (not set) "
            "(set profile to genai in the extra of connection c, or remove pipeline)",
        ),
        (
            {"profile": "genai", "pipeline": "Text2ImagePipeline"},
            "connection c: field pipeline: 'Text2ImagePipeline' is not an OpenVINO GenAI pipeline the agent knows "
            "(LLMPipeline) (fix pipeline in the extra of connection c)",
        ),
        (
            {"profile": "genai", "model_class": "OVModelForCausalLM"},
            "field model_class: OVModelForCausalLM is the optimum profile's, but the profile is genai",
        ),
    ],
)
def test_a_connection_with_a_misplaced_pipeline_names_the_field(airflow_db: Path, extra: dict[str, Any], message: str) -> None:
    text = connection_refusal(extra)
    assert message in text, text


def test_the_connection_form_offers_every_named_profile_and_the_pipeline() -> None:
    from airflow_ovcache.get_provider_info import CONN_FIELDS

    # Written out there (the module imports nothing of the package): it must not drift from the agent's.
    assert CONN_FIELDS["profile"]["schema"]["enum"] == list(profile_options.NAMED_PROFILES)
    assert "LLMPipeline" in CONN_FIELDS["pipeline"]["description"]


# -- the hook ------------------------------------------------------------------------------------


def test_the_hook_sends_the_connection_s_pipeline_with_its_profile(airflow_db: Path, ovcache_conn, sent) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    command, argv = sent
    ovcache_conn("ovc_llm", host="llm-01", cache_dir="/c", repository="/r", profile="genai", pipeline="LLMPipeline")
    for call in (
        lambda h: h.warm(models=["llm"]),
        lambda h: h.release(model="llm", version=1),
        lambda h: h.install(store="/store", models=["llm"]),
    ):
        _send(OvcacheHook("ovc_llm", agent_command=command), call)
        assert _genai_flags(argv()) == GENAI, argv()
    # A task that asks for another profile does not inherit the connection's pipeline.
    _send(OvcacheHook("ovc_llm", agent_command=command), lambda h: h.warm(profile="openvino"))
    assert "--pipeline" not in argv() and "--profile" not in argv()
    # A task's own pipeline with its own genai profile, on a connection without either.
    ovcache_conn("ovc_plain", host="plain-01", cache_dir="/c", repository="/r")
    _send(OvcacheHook("ovc_plain", agent_command=command), lambda h: h.warm(profile="genai", pipeline="LLMPipeline"))
    assert _genai_flags(argv()) == GENAI


def test_the_hook_refuses_a_pipeline_without_its_profile_before_the_agent_runs(airflow_db: Path, ovcache_conn, sent) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    from airflow_ovcache.hooks.errors import ConnectionConfigError
    from airflow_ovcache.hooks.ovcache import OvcacheHook

    command, argv = sent
    ovcache_conn("ovc_plain", host="plain-02", cache_dir="/c", repository="/r")
    with pytest.raises(ConnectionConfigError) as err:
        OvcacheHook("ovc_plain", agent_command=command).warm(models=["llm"], pipeline="LLMPipeline")
    text = str(err.value)
    assert text.startswith("host plain-02, model llm") and "set profile genai" in text and "\n" not in text, text
    with pytest.raises(FileNotFoundError):
        argv()  # the agent never ran


# -- the operator --------------------------------------------------------------------------------


def test_operator_pipeline_is_checked_when_the_dag_is_parsed() -> None:
    from airflow_ovcache.operators.warm import OvcacheWarmOperator

    warm = OvcacheWarmOperator(task_id="w", profile="genai", pipeline="LLMPipeline")
    assert (warm.profile, warm.pipeline) == ("genai", "LLMPipeline")
    assert "pipeline" in OvcacheWarmOperator.template_fields
    with pytest.raises(ValueError, match="pipeline='VLMPipeline' is not one of 'LLMPipeline'"):
        OvcacheWarmOperator(task_id="w", profile="genai", pipeline="VLMPipeline")
    with pytest.raises(ValueError, match="pipeline='LLMPipeline' is the genai profile's: pass profile='genai', not 'openvino'"):
        OvcacheWarmOperator(task_id="w", profile="openvino", pipeline="LLMPipeline")
    OvcacheWarmOperator(task_id="w", pipeline="LLMPipeline")  # the connection's profile decides
    OvcacheWarmOperator(task_id="w", profile="{{ params.profile }}", pipeline="LLMPipeline")


# -- the fleet inventory and the DAGs ------------------------------------------------------------


def test_the_inventory_takes_the_profile_and_its_pipeline_and_the_dags_get_them() -> None:
    fleet = _fleet(profile="genai", pipeline="LLMPipeline", properties={"ATTENTION_BACKEND": "SDPA"})
    assert [(h.profile, h.pipeline) for h in fleet.hosts] == [("genai", "LLMPipeline")] * 2
    kwargs = host_kwargs(fleet.hosts[0], model="llm", version=1)
    assert (kwargs["profile"], kwargs["pipeline"], kwargs["properties"]) == (
        "genai",
        "LLMPipeline",
        {"ATTENTION_BACKEND": "SDPA"},
    )
    assert _fleet(profile="genai").hosts[0].pipeline is None


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        (
            {"pipeline": "LLMPipeline"},
            "host a: pipeline is the genai profile's, but profile is not set (openvino): "
            'set profile = "genai" beside it, or remove pipeline',
        ),
        (
            {"profile": "genai", "pipeline": "WhisperPipeline"},
            "host a: pipeline 'WhisperPipeline' is not an OpenVINO GenAI pipeline the agent knows (LLMPipeline)",
        ),
        ({"profile": "genai", "pipeline": 7}, "host a: pipeline must be a string, not 7"),
    ],
)
def test_inventory_pipeline_mistakes_name_the_host_and_the_key(defaults: dict[str, object], message: str) -> None:
    text = inventory_refusal(defaults)
    assert message in text, text


def test_the_queue_dag_gives_each_host_s_warm_its_profile_and_pipeline(
    example_dags: Path,  # noqa: F811 - the fixture imported above
    ovcache_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hosts = [{"name": "llm-1", "profile": "genai", "pipeline": "LLMPipeline"}, {"name": "plain-1"}]
    llm, plain = queue_dag_warms(ovcache_conn, monkeypatch, hosts)
    assert (llm.profile, llm.pipeline) == ("genai", "LLMPipeline")
    assert (plain.profile, plain.pipeline) == (None, None)
