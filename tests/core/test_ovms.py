"""The OVMS serving profile: reproductions of OpenVINO Model Server's calls, on real CPU compiles.

OVMS itself cannot be installed here. Each compile case therefore has two independent
sides: the warm-up through ``airflow_ovcache.core.ovms.compile_ovms``, and a *separate
process* that reads the same ``config.json`` and performs OVMS's steps itself, written
in this file from the OVMS source (``src/modelinstance.cpp``: ``setCacheOptions``,
``loadOVModelPtr``, ``adjustForEmptyOutputNames``, ``applyLayoutConfiguration``,
``loadInputTensorsImpl``, ``configureBatchSize``, ``loadOVCompiledModel``) without
importing our module. That process must load from the warmed cache, and the blobs a
plain ``compile_model(path)`` and ``compile_model(read_model(path))`` write must have
other names (the profile matters).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_ovcache.core import ovms
from airflow_ovcache.core.errors import UsageError
from airflow_ovcache.samples import build_ir, build_onnx

# --------------------------------------------------------------------------- models


def build_multi_io(path: Path) -> Path:
    """An IR with two named inputs and two named outputs; ``image`` carries an NCHW layout in its rt_info."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    image = ops.parameter([1, 3, 8, 8], np.float32, name="image")
    image.set_layout(ov.Layout("NCHW"))
    extra = ops.parameter([1, 4], np.float32, name="extra")
    pooled = ops.reduce_mean(image, ops.constant(np.array([2, 3], dtype=np.int64)), False)
    score = ops.add(ops.matmul(pooled, ops.constant(np.full((3, 4), 0.5, dtype=np.float32)), False, False), extra)
    features = ops.relu(image)
    model = ov.Model([score, features], [image, extra], "multi_io")
    model.outputs[0].get_tensor().set_names({"score"})
    model.outputs[1].get_tensor().set_names({"features"})
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=False)
    return path


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One repository for the whole module: building models is the slow part."""
    root = tmp_path_factory.mktemp("ovms_models")
    build_ir(root / "ir" / "1" / "model.xml", size_mb=0.25, seed=11)
    build_onnx(root / "onnx" / "1" / "model.onnx", width=32, seed=12)
    build_multi_io(root / "multi" / "1" / "model.xml")
    return root


MODEL_FILES = {"ir": "ir/1/model.xml", "onnx": "onnx/1/model.onnx", "multi": "multi/1/model.xml"}


def write_config(folder: Path, entries: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    doc: dict[str, Any] = {"model_config_list": [{"config": e} for e in entries]}
    doc.update(extra or {})
    path.write_text(json.dumps(doc))
    return path


def blobs(cache: Path) -> set[str]:
    return {p.name for p in cache.glob("*.blob")} if cache.is_dir() else set()


# --------------------------------------------------------------------------- OVMS, reproduced independently

# Written from the OVMS source, step by step, for the config forms these tests use. It
# must not import airflow_ovcache: it stands for the server.
OVMS_SERVER = textwrap.dedent(
    """
    import json, sys
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    config_path, name, model_file, cache_dir = sys.argv[1:5]
    with open(config_path) as f:
        entries = json.load(f)["model_config_list"]
    cfg = next(e["config"] for e in entries if e["config"]["name"] == name)

    # json_parser.cpp parsePluginConfig: JSON types kept, NUM_STREAMS always a string.
    plugin = {k: (str(v) if k == "NUM_STREAMS" else v) for k, v in cfg.get("plugin_config", {}).items()}
    # modelinstance.cpp prepareDefaultPluginConfig: LATENCY unless NUM_STREAMS/PERFORMANCE_HINT.
    if "NUM_STREAMS" not in plugin and "PERFORMANCE_HINT" not in plugin:
        plugin["PERFORMANCE_HINT"] = "LATENCY"

    core = ov.Core()
    core.set_property({"CACHE_DIR": cache_dir})          # setCacheOptions: on the Core
    model = core.read_model(model_file, "", plugin)       # loadOVModelPtr

    for i, out in enumerate(model.outputs):               # adjustForEmptyOutputNames
        if not out.get_names():
            out.get_tensor().add_names({"out_%d" % i})

    def halves(text):                                     # LayoutConfiguration::fromString
        text = text.replace(" ", "").upper()
        return text.split(":") if ":" in text else (text, text)

    def fallback(port):                                   # rt_info layout, else Layout::getDefaultLayout
        inherited = ov.layout_helpers.get_layout(port)
        if not inherited.empty:
            return inherited
        rank = port.get_partial_shape().rank
        return ov.Layout("N..." if rank.is_static and rank.get_length() > 0 else "...")

    layout = cfg.get("layout")
    ppp = PrePostProcessor(model)                         # applyLayoutConfiguration
    for port in model.inputs:
        n = port.get_any_name()
        if isinstance(layout, str):
            t, m = halves(layout)
            ppp.input().tensor().set_layout(ov.Layout(t))
            ppp.input().model().set_layout(ov.Layout(m))
        elif isinstance(layout, dict) and n in layout:
            t, m = halves(layout[n])
            ppp.input(n).tensor().set_layout(ov.Layout(t))
            ppp.input(n).model().set_layout(ov.Layout(m))
        else:
            ppp.input(n).model().set_layout(fallback(port))
    for port in model.outputs:
        n = port.get_any_name()
        if isinstance(layout, dict) and n in layout:
            t, m = halves(layout[n])
            ppp.output(n).tensor().set_layout(ov.Layout(t))
            ppp.output(n).model().set_layout(ov.Layout(m))
        else:
            ppp.output(n).model().set_layout(fallback(port))
    model = ppp.build()

    shape, batch = cfg.get("shape"), cfg.get("batch_size")
    def partial(text):                                    # Shape::fromString, -1 is any
        return ov.PartialShape(text.replace("(", "[").replace(")", "]").replace("-1", "?"))
    if batch is None and shape:                           # gatherReshapeInfo + model->reshape
        wanted = {}
        for port in model.inputs:
            n = port.get_any_name()
            if isinstance(shape, dict):
                wanted[n] = partial(shape[n]) if n in shape else port.get_partial_shape()
            else:
                wanted[n] = partial(shape)
        if any(wanted[p.get_any_name()] != p.get_partial_shape() for p in model.inputs):
            model.reshape(wanted)
    elif batch is not None:                               # configureBatchSize
        ov.set_batch(model, int(batch))

    compiled = core.compile_model(model, cfg.get("target_device", "CPU"), plugin)   # loadCompiledModelPtr
    print(json.dumps({"loaded_from_cache": bool(compiled.get_property("LOADED_FROM_CACHE"))}))
    """
)


def run_ovms_reproduction(config: Path, name: str, model_file: Path, cache: Path) -> bool:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OV_")}
    done = subprocess.run(
        [sys.executable, "-c", OVMS_SERVER, str(config), name, str(model_file), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return bool(json.loads(done.stdout.strip().splitlines()[-1])["loaded_from_cache"])


# --------------------------------------------------------------------------- compile cases

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "ir-default": ("ir", {}),
    "onnx-default": ("onnx", {"target_device": "CPU"}),
    "multi-default": ("multi", {}),
    "ir-layout-single": ("ir", {"layout": "nc"}),
    "onnx-layout-tensor-over-model": ("onnx", {"layout": "CN:NC"}),
    "multi-layout-per-input": ("multi", {"layout": {"image": "NHWC:NCHW", "extra": "NC", "score": "NC"}}),
    "onnx-shape": ("onnx", {"shape": "(3,32)"}),
    "multi-shape-per-input": ("multi", {"shape": {"image": "(1,3,16,16)"}}),
    "ir-batch-size": ("ir", {"batch_size": 4}),
    "multi-batch-size": ("multi", {"batch_size": "2"}),
    "ir-num-streams": ("ir", {"plugin_config": {"NUM_STREAMS": 2}}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reproduction_of_ovms_loads_from_the_warmed_cache(case: str, repo: Path, tmp_path: Path) -> None:
    """Warm with compile_ovms; an independent reproduction of OVMS's calls loads from that cache; plain compiles do not."""
    import openvino as ov

    kind, extra = CASES[case]
    config = write_config(tmp_path / "conf", [{"name": kind, "base_path": str(repo / kind), **extra}])
    (model,) = ovms.load_ovms_config(config)
    model_file = repo / MODEL_FILES[kind]
    cache = tmp_path / "cache"

    compiled, seconds = ovms.compile_ovms(ov.Core(), str(model_file), model, str(cache))
    assert seconds > 0
    assert compiled.get_property("LOADED_FROM_CACHE") is False
    warmed = blobs(cache)
    assert len(warmed) == 1, warmed

    assert run_ovms_reproduction(config, kind, model_file, cache) is True
    assert blobs(cache) == warmed, "the reproduction wrote a blob of its own"

    by_path_dir, by_model_dir = tmp_path / "by_path", tmp_path / "by_model"
    core = ov.Core()
    core.set_property({"CACHE_DIR": str(by_path_dir)})
    core.compile_model(str(model_file), "CPU")
    core = ov.Core()
    core.set_property({"CACHE_DIR": str(by_model_dir)})
    core.compile_model(core.read_model(str(model_file)), "CPU")
    assert blobs(by_path_dir) and blobs(by_model_dir)
    assert not blobs(by_path_dir) & warmed, "by-path blob has the OVMS blob's name"
    assert not blobs(by_model_dir) & warmed, "by-model blob has the OVMS blob's name"
    # and the other way round: OVMS's calls find nothing to load in a cache a plain by-model warm-up filled
    assert run_ovms_reproduction(config, kind, model_file, by_model_dir) is False


def test_cache_dir_on_the_core_and_in_the_properties_name_the_same_blob(repo: Path, tmp_path: Path) -> None:
    """OVMS sets CACHE_DIR on its Core; a CACHE_DIR compile property must give the same blob name."""
    import openvino as ov

    model = ovms.OvmsModel("multi", str(repo / "multi"))
    model_file = str(repo / MODEL_FILES["multi"])
    on_core, in_config = tmp_path / "core", tmp_path / "config"
    ovms.compile_ovms(ov.Core(), model_file, model, str(on_core))
    core = ov.Core()
    core.compile_model(
        ovms.prepare_model(core, model_file, model), "CPU", {**ovms.ovms_plugin_config(model), "CACHE_DIR": str(in_config)}
    )
    assert blobs(on_core) == blobs(in_config) != set()


def test_num_streams_and_container_defaults_do_not_rename_the_cpu_blob(repo: Path, tmp_path: Path) -> None:
    """DESIGN fact 2 through the OVMS profile: on CPU the hint/stream properties are not caching properties."""
    import openvino as ov

    model_file = str(repo / MODEL_FILES["ir"])
    ovms.compile_ovms(ov.Core(), model_file, ovms.OvmsModel("ir", str(repo / "ir")), str(tmp_path / "a"))
    ovms.compile_ovms(
        ov.Core(), model_file, ovms.OvmsModel("ir", str(repo / "ir"), plugin_config={"NUM_STREAMS": "2"}), str(tmp_path / "b")
    )
    # nor do the CPU properties OVMS adds inside a container (applyDefaultCpuProperties)
    container = ovms.ContainerCpu(cores=2, physical_cores_per_socket=2, cpu_quota=2)
    ir_on_cpu = ovms.OvmsModel("ir", str(repo / "ir"), target_device="CPU")
    ovms.compile_ovms(ov.Core(), model_file, ir_on_cpu, str(tmp_path / "c"), container)
    assert blobs(tmp_path / "a") == blobs(tmp_path / "b") == blobs(tmp_path / "c")


def test_prepared_model_has_a_layout_on_every_port(repo: Path) -> None:
    """Inherited rt_info layout, the N... default, tensor-over-model layouts and reshape, as OVMS builds them."""
    import openvino as ov

    def layouts(m: Any) -> dict[str, str]:
        return {p.get_any_name(): ov.layout_helpers.get_layout(p).to_string() for p in list(m.inputs) + list(m.outputs)}

    f = str(repo / MODEL_FILES["multi"])
    plain = ovms.prepare_model(ov.Core(), f, ovms.OvmsModel("multi", ""))
    assert layouts(plain) == {"image": "[N,C,H,W]", "extra": "[N,...]", "score": "[N,...]", "features": "[N,...]"}

    nhwc = ovms.prepare_model(ov.Core(), f, ovms.OvmsModel("multi", "", layout={"image": "NHWC:NCHW"}))
    assert layouts(nhwc)["image"] == "[N,H,W,C]"
    assert list(nhwc.input("image").get_partial_shape().to_shape()) == [1, 8, 8, 3]

    batched = ovms.prepare_model(ov.Core(), f, ovms.OvmsModel("multi", "", batch_size=3))
    assert [p.get_partial_shape().to_shape()[0] for p in batched.inputs] == [3, 3]

    ranged = ovms.prepare_model(ov.Core(), str(repo / MODEL_FILES["ir"]), ovms.OvmsModel("ir", "", shape="(1:4,-1)"))
    assert str(ranged.input(0).get_partial_shape()) == "[1..4,?]"


# --------------------------------------------------------------------------- properties and policy


def test_plugin_config_as_ovms_hands_it_over() -> None:
    m = ovms.OvmsModel("m", "/x")
    assert ovms.ovms_plugin_config(m) == {"PERFORMANCE_HINT": "LATENCY"}
    assert ovms.ovms_plugin_config(ovms.OvmsModel("m", "/x", plugin_config={"NUM_STREAMS": "4"})) == {"NUM_STREAMS": "4"}
    typed = ovms.OvmsModel(
        "m", "/x", plugin_config={"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_NUM_THREADS": "8", "ENABLE_CPU_PINNING": "False"}
    )
    assert ovms.ovms_plugin_config(typed) == {
        "PERFORMANCE_HINT": "THROUGHPUT",
        "INFERENCE_NUM_THREADS": 8,
        "ENABLE_CPU_PINNING": False,
    }
    container = ovms.ContainerCpu(cores=4, physical_cores_per_socket=8, sockets=1, cpu_quota=4)
    tput = ovms.OvmsModel("m", "/x", target_device="CPU", plugin_config={"PERFORMANCE_HINT": "THROUGHPUT"})
    assert ovms.ovms_plugin_config(tput, container=container) == {
        "PERFORMANCE_HINT": "THROUGHPUT",
        "ENABLE_CPU_PINNING": False,
        "NUM_STREAMS": 4,
        "INFERENCE_NUM_THREADS": 4,
    }
    # read_model gets the config without the container's CPU defaults (loadOVModelPtr).
    assert ovms.ovms_read_config(tput) == {"PERFORMANCE_HINT": "THROUGHPUT"}


def test_config_json_is_read_as_ovms_parses_it(tmp_path: Path) -> None:
    (tmp_path / "srv" / "models" / "resnet" / "1").mkdir(parents=True)
    config = write_config(
        tmp_path / "srv" / "models",
        [
            {
                "name": "resnet",
                "base_path": "/models/resnet",
                "layout": "nhwc : nchw",
                "shape": {"input": [1, 3, 224, 224]},
                "batch_size": 8,
                "nireq": 2,
                "plugin_config": {"CPU_THROUGHPUT_STREAMS": "CPU_THROUGHPUT_AUTO", "NUM_STREAMS": 2, "CPU_THREADS_NUM": "4"},
                "model_version_policy": {"specific": {"versions": [3, 1]}},
            },
            {"name": "relative", "base_path": "resnet"},
        ],
    )
    resnet, relative = ovms.load_ovms_config(config, path_map={"/models": str(tmp_path / "srv" / "models")})
    assert resnet.base_path == "/models/resnet"
    assert resnet.local_base_path == str(tmp_path / "srv" / "models" / "resnet")
    assert resnet.layout == "NHWC:NCHW"
    assert resnet.shape == {"input": [1, 3, 224, 224]}
    assert resnet.batch_size is None and "batch_size (shape is set)" in resnet.ignored
    assert resnet.plugin_config == {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "2", "INFERENCE_NUM_THREADS": "4"}
    assert resnet.model_version_policy == {"specific": {"versions": [1, 3]}}
    assert resnet.target_device is None
    # a relative base_path is relative to the config's folder as the server sees it
    assert relative.base_path == "/models/resnet"
    assert ovms.OvmsModel.from_json(resnet.to_json()) == resnet
    assert json.dumps(resnet.to_json()) == json.dumps(ovms.OvmsModel.from_json(resnet.to_json()).to_json())


def test_auto_shapes_are_not_cached_by_ovms(tmp_path: Path, repo: Path) -> None:
    import openvino as ov

    auto_shape = ovms.OvmsModel("m", "/x", shape={"input": "auto"})
    assert ovms.caching_disabled_reason(auto_shape) == "OVMS does not cache this model: shape is auto"
    assert (
        ovms.caching_disabled_reason(ovms.OvmsModel("m", "/x", batch_size="auto"))
        == "OVMS does not cache this model: batch_size is auto"
    )
    assert ovms.caching_disabled_reason(ovms.OvmsModel("m", "/x", batch_size="auto", allow_cache=True)) is None
    assert ovms.caching_disabled_reason(ovms.OvmsModel("m", "/x", batch_size=2)) is None
    with pytest.raises(UsageError, match="OVMS does not cache this model: shape is auto"):
        ovms.compile_ovms(ov.Core(), str(repo / MODEL_FILES["ir"]), auto_shape, str(tmp_path / "c"))
    assert not blobs(tmp_path / "c")


def test_version_folders_and_model_files_as_ovms_finds_them(tmp_path: Path) -> None:
    base = tmp_path / "m"
    for name in ("1", "3", "0", "x", "2_old", ".hidden"):
        (base / name).mkdir(parents=True)
    (base / "7").write_text("a file, not a folder")
    assert ovms.ovms_versions(base) == [1, 2, 3]
    model = ovms.OvmsModel("m", str(base), model_version_policy={"latest": {"num_versions": 2}})
    assert ovms.ovms_served_versions(model, [1, 2, 3]) == [3, 2]

    (base / "1" / "model.onnx").write_bytes(b"")
    assert ovms.ovms_model_file(base / "1").endswith("model.onnx")
    (base / "1" / "a.xml").write_text("")
    (base / "1" / "a.bin").write_bytes(b"")
    assert ovms.ovms_model_file(base / "1").endswith("a.xml")  # IR before ONNX
    (base / "1" / "b.xml").write_text("")
    with pytest.raises(UsageError, match="directory order"):
        ovms.ovms_model_file(base / "1")


# --------------------------------------------------------------------------- bad input


BAD_ENTRIES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown key": ({"name": "m", "base_path": "/m", "max_batch": 4}, "unknown keys"),
    "versions as a string": (
        {"name": "m", "base_path": "/m", "model_version_policy": {"specific": {"versions": "12"}}},
        "not a list",
    ),
    "version as a string": (
        {"name": "m", "base_path": "/m", "model_version_policy": {"specific": {"versions": ["1"]}}},
        "not an integer",
    ),
    "num_versions as a string": (
        {"name": "m", "base_path": "/m", "model_version_policy": {"latest": {"num_versions": "1"}}},
        "not an integer",
    ),
    "num_versions zero": (
        {"name": "m", "base_path": "/m", "model_version_policy": {"latest": {"num_versions": 0}}},
        "num_versions is 0",
    ),
    "negative version": ({"name": "m", "base_path": "/m", "model_version_policy": {"specific": {"versions": [-1]}}}, "positive"),
    "two policies": (
        {"name": "m", "base_path": "/m", "model_version_policy": {"all": {}, "latest": {"num_versions": 1}}},
        "exactly one",
    ),
    "batch_size zero": ({"name": "m", "base_path": "/m", "batch_size": 0}, "batch_size is 0"),
    "batch_size garbage": ({"name": "m", "base_path": "/m", "batch_size": "four"}, "not a batch size"),
    "batch_size a list": ({"name": "m", "base_path": "/m", "batch_size": [4]}, "neither an integer nor a string"),
    "shape an int": ({"name": "m", "base_path": "/m", "shape": 224}, "neither a string nor an object"),
    "shape bad string": ({"name": "m", "base_path": "/m", "shape": "1,3,224"}, "not an OVMS shape"),
    "shape dims as strings": ({"name": "m", "base_path": "/m", "shape": {"input": ["1", "3"]}}, "shape.input"),
    "layout bad letters": ({"name": "m", "base_path": "/m", "layout": "NXYZ"}, "not an OVMS layout"),
    "layout a list": ({"name": "m", "base_path": "/m", "layout": ["NCHW"]}, "neither a string nor an object"),
    "plugin_config a string": ({"name": "m", "base_path": "/m", "plugin_config": "NUM_STREAMS=1"}, "not an object"),
    "plugin_config a list value": (
        {"name": "m", "base_path": "/m", "plugin_config": {"NUM_STREAMS": [1]}},
        "NUM_STREAMS is a list",
    ),
    "target_device an int": ({"name": "m", "base_path": "/m", "target_device": 0}, "not a string"),
    "nireq negative": ({"name": "m", "base_path": "/m", "nireq": -1}, "nireq"),
    "allow_cache a string": ({"name": "m", "base_path": "/m", "allow_cache": "yes"}, "not true/false"),
    "base_path escapes": ({"name": "m", "base_path": "/models/../etc"}, "escapes"),
    "custom loader": ({"name": "m", "base_path": "/m", "custom_loader_options": {"loader_name": "x"}}, "custom loader"),
    "graph entry": ({"name": "m", "base_path": "/m", "graph_path": "graph.pbtxt"}, "MediaPipe"),
}


def assert_one_line(exc: UsageError, config: Path, model: str | None) -> None:
    line = exc.one_line()
    assert "\n" not in line
    assert str(config) in line
    if model:
        assert f"model {model}" in line
    assert exc.hint, "every error says what to fix"


@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_bad_model_entry_is_one_line_naming_file_and_model(case: str, tmp_path: Path) -> None:
    entry, expected = BAD_ENTRIES[case]
    config = write_config(tmp_path, [entry])
    with pytest.raises(UsageError) as info:
        ovms.load_ovms_config(config)
    assert expected in info.value.one_line()
    assert_one_line(info.value, config, "m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not JSON"),
        ("[]", "not a JSON object"),
        ("{}", "has no model_config_list"),
        ('{"model_config_list": {}}', "not a list"),
        ('{"model_config_list": [], "models": []}', "unknown top-level keys"),
        ('{"model_config_list": [{"name": "m"}]}', "is not {"),
    ],
)
def test_bad_config_file_is_one_line_naming_the_file(text: str, expected: str, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(text)
    with pytest.raises(UsageError) as info:
        ovms.load_ovms_config(config)
    assert expected in info.value.one_line()
    assert_one_line(info.value, config, None)


def test_entries_not_managed_are_reported_or_skipped(tmp_path: Path) -> None:
    llm = tmp_path / "llm"
    llm.mkdir()
    (llm / "graph.pbtxt").write_text("")
    config = write_config(
        tmp_path,
        [{"name": "llm", "base_path": str(llm)}, {"name": "plain", "base_path": str(tmp_path / "plain")}],
        {"mediapipe_config_list": [{"name": "pipe", "graph_path": "g.pbtxt"}]},
    )
    with pytest.raises(UsageError) as info:
        ovms.load_ovms_config(config)
    assert "not managed" in info.value.one_line()
    assert_one_line(info.value, config, "pipe")
    found = ovms.read_ovms_config(config)
    assert [m.name for m in found.models] == ["plain"]
    assert {n.name for n in found.not_managed} == {"pipe", "llm"}
    assert [m.name for m in ovms.load_ovms_config(config, allow_not_managed=True)] == ["plain"]


def test_duplicate_names_and_unmapped_paths_are_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "m", "base_path": "/a"}, {"name": "m", "base_path": "/b"}])
    with pytest.raises(UsageError, match="defined twice") as info:
        ovms.load_ovms_config(config)
    assert_one_line(info.value, config, "m")
    config = write_config(tmp_path, [{"name": "m", "base_path": "/elsewhere/m"}])
    with pytest.raises(UsageError, match="none of the mapped prefixes") as info:
        ovms.load_ovms_config(config, path_map={"/models": str(tmp_path)})
    assert_one_line(info.value, config, "m")


def test_a_configured_name_the_model_lacks_is_refused(repo: Path) -> None:
    import openvino as ov

    f = str(repo / MODEL_FILES["multi"])
    with pytest.raises(UsageError, match="not an input"):
        ovms.prepare_model(ov.Core(), f, ovms.OvmsModel("multi", "", shape={"nope": "(1,2)"}))
    with pytest.raises(UsageError, match="one input"):
        ovms.prepare_model(ov.Core(), f, ovms.OvmsModel("multi", "", layout="NCHW"))
    with pytest.raises(UsageError, match="not supported by CPU"):
        ovms.check_plugin_config(ov.Core(), ovms.OvmsModel("multi", "", plugin_config={"CACHE_DIR": "/x"}), "CPU")


def test_the_mount_point_does_not_change_the_ovms_blob(repo: Path, tmp_path: Path) -> None:
    """OVMS compiles the model object: the same files under another path (a container's /models) name the same blob."""
    import shutil

    import openvino as ov

    moved = tmp_path / "elsewhere" / "multi"
    shutil.copytree(repo / "multi", moved)
    model = ovms.OvmsModel("multi", "/models/multi")
    ovms.compile_ovms(ov.Core(), str(repo / MODEL_FILES["multi"]), model, str(tmp_path / "a"))
    ovms.compile_ovms(ov.Core(), str(moved / "1" / "model.xml"), model, str(tmp_path / "b"))
    assert blobs(tmp_path / "a") == blobs(tmp_path / "b") != set()


def test_a_device_the_host_lacks_is_refused_before_compiling(repo: Path, tmp_path: Path) -> None:
    import openvino as ov

    model = ovms.OvmsModel("ir", str(repo / "ir"), target_device="NPU.7", config_path="/etc/ovms/config.json")
    with pytest.raises(UsageError, match="not present on this host") as info:
        ovms.compile_ovms(ov.Core(), str(repo / MODEL_FILES["ir"]), model, str(tmp_path / "c"))
    assert "device NPU.7" in info.value.one_line() and "model ir" in info.value.one_line()
    assert not blobs(tmp_path / "c")
