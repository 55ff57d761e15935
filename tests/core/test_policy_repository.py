from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_ovcache.core.errors import InvalidName, ModelNotFound, UsageError
from airflow_ovcache.core.policy import VersionPolicy
from airflow_ovcache.core.repository import ModelRepository, check_model_name, parse_version


@pytest.mark.parametrize(
    ("text", "available", "selected"),
    [
        ("all", [3, 1, 2], [1, 2, 3]),
        ("latest", [1, 2, 3], [3]),
        ("latest:2", [1, 5, 3], [3, 5]),
        ("latest:9", [1, 2], [1, 2]),
        ("specific:1,3", [1, 2, 3], [1, 3]),
        ("specific:4", [1, 2, 3], []),
        ('{"latest": {"num_versions": 2}}', [1, 2, 3], [2, 3]),
        ('{"specific": {"versions": [2]}}', [1, 2, 3], [2]),
        ('{"all": {}}', [2, 1], [1, 2]),
    ],
)
def test_policy_selects_like_ovms(text: str, available: list[int], selected: list[int]) -> None:
    assert VersionPolicy.parse(text).select(available) == selected


@pytest.mark.parametrize(
    "text", ["latest:0", "latest:-1", "specific:", "specific:a", "newest", "{bad json", '{"latest": 1, "all": {}}']
)
def test_policy_rejects_nonsense(text: str) -> None:
    with pytest.raises(UsageError):
        VersionPolicy.parse(text)


def test_policy_round_trips_through_its_text() -> None:
    for text in ("all", "latest:3", "specific:1,4"):
        assert str(VersionPolicy.parse(text)) == text


@pytest.mark.parametrize("name", ["..", ".", "a/b", "/abs", "", ".hidden", "a..b", "x\x00y", "sp ace"])
def test_model_names_must_be_plain(name: str) -> None:
    with pytest.raises(InvalidName):
        check_model_name(name)


@pytest.mark.parametrize("text", ["0", "-1", "01", "1.0", "abc", "", "../1"])
def test_versions_must_be_positive_integers(text: str) -> None:
    with pytest.raises(InvalidName):
        parse_version(text)


def test_discovery_ignores_what_ovms_ignores(repo: Path) -> None:
    (repo / "mlp" / "notes").mkdir()
    (repo / "mlp" / "007").mkdir()
    (repo / "README.txt").write_text("not a model")
    (repo / ".git").mkdir()
    r = ModelRepository(repo)
    assert r.models() == ["mlp", "tiny"]
    assert r.versions("mlp") == [1, 2]
    v = r.version("mlp", 2)
    assert v.model_file == repo / "mlp" / "2" / "model.xml"
    assert v.format == "ir"
    assert r.version("tiny", 1).format == "onnx"


def test_paths_are_absolute_but_not_resolved(repo: Path, tmp_path: Path) -> None:
    """A by-path blob hashes the path string: a symlinked root must stay as given."""
    link = tmp_path / "served"
    link.symlink_to(repo)
    v = ModelRepository(link).version("mlp", 1)
    assert str(v.model_file).startswith(str(link))


def test_symlink_leading_out_of_root_is_rejected(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "evil"
    outside.mkdir(parents=True)
    os.symlink(outside, repo / "evil")
    os.symlink(outside, repo / "mlp" / "9")
    r = ModelRepository(repo)
    assert "evil" not in r.models()
    assert any("leads out of the repository root" in p for p in r.problems)
    assert 9 not in r.versions("mlp")
    with pytest.raises(InvalidName):
        r.model_dir("evil")


def test_missing_things_are_named(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        ModelRepository(tmp_path / "nope")
    r = ModelRepository(repo)
    with pytest.raises(ModelNotFound, match="model 'ghost'"):
        r.version("ghost", 1)
    with pytest.raises(ModelNotFound, match="version folder"):
        r.version("mlp", 7)
    (repo / "mlp" / "2" / "model.bin").unlink()
    with pytest.raises(ModelNotFound, match="no weights file"):
        r.version("mlp", 2)


def test_ambiguous_version_folder_needs_model_file(repo: Path) -> None:
    (repo / "mlp" / "1" / "other.onnx").write_bytes(b"x")
    r = ModelRepository(repo)
    with pytest.raises(ModelNotFound, match="several model files"):
        r.version("mlp", 1)
    assert r.version("mlp", 1, model_file="model.xml").format == "ir"
    with pytest.raises(InvalidName):
        r.version("mlp", 1, model_file="../2/model.xml")
