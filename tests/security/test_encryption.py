"""Cache encryption: a real cipher, keys with custody, wrong keys caught, no flip-flop, rotation.

Everything here runs real OpenVINO compiles. "A server with another key" is
played by a plain ``core.compile_model`` with that key's callbacks on the shared
cache directory, which is exactly what such a server does.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from airflow_ovcache.core.blobfile import blob_checksum
from airflow_ovcache.core.encryption import (
    NOT_SEALED,
    SEALED_OTHER_KEY,
    SEALED_WITH_KEY,
    CacheCipher,
    key_id,
    probe_blob,
)
from airflow_ovcache.core.errors import EncryptionError
from airflow_ovcache.core.loadcheck import LoadCheck, run_load_checks
from airflow_ovcache.core.manifest import Manifest
from tests.cli.test_cli import SCHEMA
from tests.conftest import blobs_in, require
from tests.security.conftest import agent, make_key_file


def _warm(repo: Path, cache: Path, *extra: str, stdin: bytes | None = None) -> dict[str, Any]:
    """Warm model mlp, latest version (2)."""
    run = agent(
        "warm", "--repository", str(repo), "--cache-dir", str(cache), "--model", "mlp", "--json", "-q", *extra, stdin=stdin
    )
    assert run.returncode in (0, 2), run.stderr
    return run.json


def _verify(cache: Path, *extra: str, stdin: bytes | None = None) -> dict[str, Any]:
    run = agent("verify", "--cache-dir", str(cache), "--json", *extra, stdin=stdin)
    assert run.returncode in (0, 1), run.stderr
    jsonschema.validate(run.json, SCHEMA)  # the new statuses and fields are in the published schema
    return run.json["result"]


def _server_compile(model: Path, cache: Path, key: bytes | None) -> bool:
    """What a serving process does with plain OpenVINO: compile through the shared cache with its key."""
    import openvino as ov

    config: dict[str, object] = {"CACHE_DIR": str(cache)}
    if key is not None:
        config["CACHE_ENCRYPTION_CALLBACKS"] = CacheCipher(key).callbacks()
    return bool(ov.Core().compile_model(str(model), "CPU", config).get_property("LOADED_FROM_CACHE"))


def _manifest(cache: Path) -> Manifest:
    return Manifest.load(cache / ".ovcache" / "manifest.json")


# -- what OpenVINO does; the design rests on these -------------------------------------------------


def test_openvino_encrypts_the_topology_only_and_recompiles_silently_on_a_wrong_key(
    repo: Path, cache_dir: Path, key_file: Path
) -> None:
    _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    (blob,) = blobs_in(cache_dir)
    data = blob.read_bytes()
    weights = (repo / "mlp" / "2" / "model.bin").read_bytes()
    # the weights stay in clear: any slice of model.bin is found as is in the blob ...
    assert all(data.find(weights[at : at + 256]) >= 0 for at in (0, len(weights) // 3, len(weights) // 2))
    # ... the topology does not: no layer of the IR is readable
    assert b"<layer" not in data and b"<layer" in (repo / "mlp" / "2" / "model.xml").read_bytes()
    assert probe_blob(blob, key_file.read_bytes()) == SEALED_WITH_KEY
    assert probe_blob(blob, os.urandom(32)) == SEALED_OTHER_KEY
    # A wrong key raises nothing: OpenVINO recompiles and rewrites the shared blob under its key.
    before = blob_checksum(blob)
    assert _server_compile(repo / "mlp" / "2" / "model.xml", cache_dir, os.urandom(32)) is False
    assert blob_checksum(blob) != before
    assert probe_blob(blob, key_file.read_bytes()) == SEALED_OTHER_KEY
    # and without any key, a blob comes out unsealed
    assert _server_compile(repo / "mlp" / "2" / "model.xml", cache_dir, None) is False
    assert probe_blob(blob, key_file.read_bytes()) == NOT_SEALED


def test_a_load_check_tells_a_wrong_key_from_a_cache_miss(repo: Path, cache_dir: Path, key_file: Path, tmp_path: Path) -> None:
    _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    entry = _manifest(cache_dir).select()[0]
    other = make_key_file(tmp_path / "other.key")
    right = LoadCheck("right", entry.model_path, entry.spec, str(cache_dir / entry.blob))
    wrong = LoadCheck("wrong", entry.model_path, {**entry.spec, "encryption_key_file": str(other)}, str(cache_dir / entry.blob))
    scratch = tmp_path / "scratch"
    outcomes = run_load_checks([right, wrong], scratch)
    assert outcomes["right"].loaded_from_cache is True and outcomes["right"].key_rejected is False
    assert outcomes["wrong"].loaded_from_cache is False and outcomes["wrong"].key_rejected is True
    assert blob_checksum(cache_dir / entry.blob) == entry.checksum  # the check ran on a link in scratch


# -- no flip-flop between a server with another key and the warm-up ----------------------------------


def test_a_blob_rewritten_under_another_key_is_reported_and_not_fought_over(repo: Path, cache_dir: Path, key_file: Path) -> None:
    _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    model = repo / "mlp" / "2" / "model.xml"
    server_key = os.urandom(32)
    _server_compile(model, cache_dir, server_key)  # a server configured with another key rewrites it
    (blob,) = blobs_in(cache_dir)
    servers_blob = blob_checksum(blob)

    result = _verify(cache_dir)
    (row,) = result["entries"]
    assert row["status"] == "key-mismatch" and row["repairable"] is False
    assert "another encryption key" in row["reason"] and "overwrite each other" in row["reason"]

    # A warm refuses to start the flip-flop, and says how to end it.
    warm = _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    (item,) = warm["result"]["items"]
    assert item["status"] == "failed" and item["error"]["code"] == "key-mismatch"
    assert "--force" in item["error"]["hint"] and "model mlp" in item["reason"]
    assert blob_checksum(blob) == servers_blob

    # The nightly repair does not rebuild it either: it is reported as unrepaired.
    rewarm = agent("rewarm", "--cache-dir", str(cache_dir), "--json", "--no-confirm")
    assert rewarm.returncode == 1, rewarm.stderr
    assert rewarm.json["result"]["rewarmed"] == [] and [u["status"] for u in rewarm.json["result"]["unrepaired"]] == [
        "key-mismatch"
    ]
    assert blob_checksum(blob) == servers_blob

    # Once a person has aligned the keys, --force rebuilds it.
    forced = _warm(repo, cache_dir, "--encryption-key-file", str(key_file), "--force")
    assert forced["result"]["items"][0]["status"] == "warmed"
    assert _verify(cache_dir, "--load-check")["summary"] == {"ok": 1}


def test_a_blob_rewritten_without_encryption_is_a_key_mismatch_too(repo: Path, cache_dir: Path, key_file: Path) -> None:
    _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    _server_compile(repo / "mlp" / "2" / "model.xml", cache_dir, None)
    (row,) = _verify(cache_dir)["entries"]
    assert row["status"] == "key-mismatch" and "without encryption" in row["reason"] and not row["repairable"]


# -- rotation ---------------------------------------------------------------------------------------


def test_rotating_the_key_rewarms_and_supersedes_the_old_entry(repo: Path, cache_dir: Path, key_file: Path) -> None:
    first = _warm(repo, cache_dir, "--encryption-key-file", str(key_file))["result"]["items"][0]
    old_id = key_id(key_file.read_bytes())
    make_key_file(key_file)  # rotate: same file, new key
    new_id = key_id(key_file.read_bytes())

    (row,) = _verify(cache_dir)["entries"]
    assert row["status"] == "key-mismatch" and row["repairable"] is True and "rotated" in row["reason"]

    rewarm = agent("rewarm", "--cache-dir", str(cache_dir), "--json")
    assert rewarm.returncode == 0, rewarm.stderr
    (rebuilt,) = rewarm.json["result"]["rewarmed"]
    assert rebuilt["status"] == "warmed" and rebuilt["loaded_from_cache"] is True and rebuilt["spec_id"] != first["spec_id"]
    entries = _manifest(cache_dir).select()
    assert [(e.version, e.key_id) for e in entries] == [(2, new_id)]  # the old key's entry is gone
    assert old_id not in (cache_dir / ".ovcache" / "manifest.json").read_text()

    # A plain warm after the next rotation does the same, and says what it superseded.
    make_key_file(key_file)
    again = _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    (item,) = again["result"]["items"]
    assert item["status"] == "warmed"
    assert any("superseded" in w for w in item["warnings"])
    assert [e.key_id for e in _manifest(cache_dir).select()] == [key_id(key_file.read_bytes())]
    assert _verify(cache_dir, "--load-check")["summary"] == {"ok": 1}


def test_two_key_files_on_one_blob_are_refused(repo: Path, cache_dir: Path, key_file: Path, tmp_path: Path) -> None:
    _warm(repo, cache_dir, "--encryption-key-file", str(key_file))
    other = make_key_file(tmp_path / "second.key")
    item = _warm(repo, cache_dir, "--encryption-key-file", str(other))["result"]["items"][0]
    assert item["status"] == "failed" and item["error"]["code"] == "spec-conflict"


# -- key custody ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o660, 0o666])
def test_a_key_file_others_can_read_or_write_is_refused(repo: Path, cache_dir: Path, tmp_path: Path, mode: int) -> None:
    key = make_key_file(tmp_path / "loose.key", mode=mode)
    item = _warm(repo, cache_dir, "--encryption-key-file", str(key))["result"]["items"][0]
    assert item["status"] == "failed" and item["error"]["code"] == "encryption"
    assert f"{mode:04o}" in item["reason"] and "chmod 600" in item["error"]["hint"]
    assert key.read_bytes().hex() not in json.dumps(item)
    assert blobs_in(cache_dir) == []


def test_a_group_readable_key_file_is_accepted_for_a_serving_group(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    key = make_key_file(tmp_path / "group.key", mode=0o640)
    assert _warm(repo, cache_dir, "--encryption-key-file", str(key))["result"]["items"][0]["status"] == "warmed"


@pytest.mark.root
def test_a_key_file_owned_by_another_user_is_refused(repo: Path, cache_dir: Path, tmp_path: Path) -> None:
    require(os.geteuid() == 0, "chown needs root")
    key = make_key_file(tmp_path / "theirs.key")
    os.chown(key, 65534, 65534)
    item = _warm(repo, cache_dir, "--encryption-key-file", str(key))["result"]["items"][0]
    assert item["error"]["code"] == "encryption" and "owned by uid 65534" in item["reason"]


def test_a_malformed_key_is_refused_without_quoting_it(tmp_path: Path) -> None:
    from airflow_ovcache.core.encryption import load_key

    key = make_key_file(tmp_path / "short.key", key=b"s3cr3t-but-too-short")
    with pytest.raises(EncryptionError) as err:
        load_key(key)
    assert "s3cr3t" not in str(err.value) and "32 raw bytes or 64 hex" in str(err.value)


# -- the key on standard input ---------------------------------------------------------------------------


def test_a_key_on_stdin_warms_verifies_and_load_checks(repo: Path, cache_dir: Path) -> None:
    key = os.urandom(32)
    line = key.hex().encode() + b"\n"
    warm = _warm(repo, cache_dir, "--encryption-key-stdin", "--confirm", stdin=line)
    (item,) = warm["result"]["items"]
    assert item["status"] == "warmed" and item["loaded_from_cache"] is True  # the confirm child got the key too
    (entry,) = _manifest(cache_dir).select()
    assert entry.spec["encryption_key_file"] == "-" and entry.key_id == key_id(key)
    text = (cache_dir / ".ovcache" / "manifest.json").read_text()
    assert key.hex() not in text and key.hex().upper() not in text

    # Without the key the entry cannot be checked: reported as such, never deleted.
    (row,) = _verify(cache_dir)["entries"]
    assert row["status"] == "key-unavailable" and "standard input" in row["reason"] and row["repairable"] is False
    inval = agent("invalidate", "--cache-dir", str(cache_dir), "--json")
    assert inval.returncode == 0, inval.stderr
    assert inval.json["result"]["plan"]["removals"] == [] and len(blobs_in(cache_dir)) == 1

    # With it, a load check passes; with another key on stdin, it is a (rotation) key mismatch.
    assert _verify(cache_dir, "--encryption-key-stdin", "--load-check", stdin=line)["summary"] == {"ok": 1}
    (row,) = _verify(cache_dir, "--encryption-key-stdin", stdin=os.urandom(32).hex().encode())["entries"]
    assert row["status"] == "key-mismatch"


def test_a_bad_key_on_stdin_is_an_error_naming_no_key(repo: Path, cache_dir: Path) -> None:
    run = agent(
        "warm", "--repository", str(repo), "--cache-dir", str(cache_dir), "--encryption-key-stdin", "--json", stdin=b"not a key\n"
    )
    assert run.returncode == 2 and run.json["error"]["code"] == "encryption"
    assert "not a key" not in run.stdout + run.stderr
    empty = agent("verify", "--cache-dir", str(cache_dir), "--encryption-key-stdin", stdin=b"")
    assert empty.returncode == 2 and "standard input is empty" in empty.stderr
    both = agent(
        "warm",
        "--repository",
        str(repo),
        "--cache-dir",
        str(cache_dir),
        "--encryption-key-stdin",
        "--encryption-key-file",
        "/k",
        stdin=b"0" * 64,
    )
    assert both.returncode == 2 and "not both" in both.stderr


def test_keys_never_reach_the_results(repo: Path, cache_dir: Path, key_file: Path) -> None:
    key = key_file.read_bytes()
    outputs = [
        agent(
            "warm",
            "--repository",
            str(repo),
            "--cache-dir",
            str(cache_dir),
            "--encryption-key-file",
            str(key_file),
            "--json",
            "--confirm",
        ),
        agent("verify", "--cache-dir", str(cache_dir), "--json", "--load-check"),
        agent("status", "--cache-dir", str(cache_dir), "--json"),
    ]
    for run in outputs:
        assert run.returncode == 0, run.stderr
        for form in (key.hex(), key.hex().upper()):
            assert form not in run.stdout and form not in run.stderr
    for path in (cache_dir / ".ovcache").rglob("*"):
        if path.is_file():
            assert key.hex() not in path.read_bytes().decode("latin-1") and key not in path.read_bytes()
    shutil.rmtree(cache_dir)
