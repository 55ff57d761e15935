"""What this host is, as far as a cache blob cares: runtime version and CPU.

Blob names carry neither the runtime version nor the CPU, so a blob from another
runtime or another CPU sits under the same name as a good one. We record both
with every blob and compare them later.

The runtime's distribution version comes from package metadata, which costs no
OpenVINO import; that keeps a no-op warm in milliseconds. The instruction set
the CPU plugin compiles for is only known to the plugin, so it is probed once
by compiling a one-node model and read from that blob's header, then remembered
per (runtime build, CPU signature) in the cache directory's host facts.
"""

from __future__ import annotations

import functools
import json
import os
import platform
from pathlib import Path

from . import trace
from .blobfile import read_header


@trace.traced("hostfacts.runtime_dist_version")
@functools.lru_cache(maxsize=1)
def runtime_dist_version() -> str | None:
    """The installed ``openvino`` distribution's version (``2026.4.1``), from package metadata; None if absent.

    Recorded with every blob and compared by a quick verify at no OpenVINO import cost.
    """
    from importlib import metadata

    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return None


def runtime_key() -> str:
    """Names the installed OpenVINO without importing it: its version and its package file's stat."""
    import importlib.util

    spec = importlib.util.find_spec("openvino")
    origin = spec.origin if spec is not None else None
    stamp = ""
    if origin:
        try:
            st = os.stat(origin)
            stamp = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            pass
    return f"{runtime_dist_version()}|{origin}|{stamp}"


_BUILD: dict[str, str] = {}


@trace.traced("hostfacts.runtime_build")
def runtime_build(facts_path: Path | None = None) -> str:
    """The full build string OpenVINO writes into a blob's ``ie_version``.

    Importing OpenVINO to ask costs more than a whole quick verify of hundreds of
    entries, so the answer is remembered in the cache directory's host facts
    against :func:`runtime_key`, which changes whenever the package does.

    :param facts_path: the cache directory's host facts file to read the answer from; ``None`` asks OpenVINO
        (once per process either way: the answer is kept in memory).
    """
    if "build" in _BUILD:
        return _BUILD["build"]
    key = runtime_key()
    if facts_path is not None:
        try:
            facts = json.loads(facts_path.read_text())
            if facts.get("runtime_key") == key and facts.get("runtime"):
                _BUILD["build"] = str(facts["runtime"])
                return _BUILD["build"]
        except (OSError, ValueError, AttributeError):
            pass
    import openvino

    _BUILD["build"] = str(openvino.get_version())
    return _BUILD["build"]


@trace.traced("hostfacts.cpu_signature")
@functools.lru_cache(maxsize=1)
def cpu_signature() -> str:
    """A short hash of the CPU model and feature flags: changes when the host's CPU does."""
    import blake3

    model = flags = ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = " ".join(sorted(value.split()))
                if model and flags:
                    break
    except OSError:
        model = platform.processor()
    text = f"{platform.machine()}|{model}|{flags}"
    return blake3.blake3(text.encode()).hexdigest()[:16]


def cpu_model_name() -> str:
    """The CPU's marketing name from ``/proc/cpuinfo`` (or what :mod:`platform` knows), for people to read.

    Only :func:`cpu_signature` decides whether the CPU changed; this name goes in reports and host facts.
    """
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_isa(facts_path: Path | None) -> str | None:
    """The instruction set the CPU plugin compiles for on this host, probed once and remembered.

    The remembered answer is used only while the runtime build and CPU signature match;
    otherwise :func:`probe_isa` runs (a compile) and the answer is written back when it can be.

    :param facts_path: the cache directory's host facts file; ``None`` probes every time.
    """
    build = runtime_build(facts_path)
    signature = cpu_signature()
    if facts_path is not None:
        try:
            facts = json.loads(facts_path.read_text())
            if facts.get("runtime") == build and facts.get("cpu") == signature:
                return facts.get("isa")
        except (OSError, ValueError, AttributeError):
            pass
    isa = probe_isa()
    if facts_path is not None and facts_path.parent.is_dir():
        try:
            write_host_facts(facts_path, isa)
        except Exception:  # noqa: BLE001 - a read-only cache dir only means we probe again next time
            pass
    return isa


def write_host_facts(facts_path: Path, isa: str | None, mode: int = 0o600) -> None:
    """Remember what this host is (runtime build and key, CPU, ISA) in a cache directory.

    :param facts_path: the host facts file in the cache directory's state folder.
    :param isa: the instruction set the CPU plugin compiles for (``None`` if its blobs do not say).
    :param mode: the file's permission bits (the access policy's file mode).
    """
    record = {
        "runtime": runtime_build(),
        "runtime_key": runtime_key(),
        "cpu": cpu_signature(),
        "cpu_model": cpu_model_name(),
        "isa": isa,
    }
    from .fsutil import atomic_write  # a write: the serving helper, which only reads facts, never needs it

    atomic_write(facts_path, json.dumps(record, indent=1).encode(), mode)


def probe_isa() -> str | None:
    """Ask the CPU plugin which instruction set it compiles for: compile a one-node model, read its blob's header.

    Costs an OpenVINO import and a compile, hence :func:`host_isa` remembers the answer.
    None if the plugin wrote no blob or its header does not record the ISA.
    """
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops

    param = ops.parameter([1, 4], np.float32, name="x")
    model = ov.Model([ops.relu(param)], [param], "ovcache_isa_probe")
    import tempfile  # here, not at the top: the serving helper imports this module on every server start

    with tempfile.TemporaryDirectory(prefix="ovcache-probe-") as tmp:
        ov.Core().compile_model(model, "CPU", {"CACHE_DIR": tmp})
        blobs = [p for p in Path(tmp).iterdir() if p.suffix == ".blob"]
        if not blobs:
            return None
        return read_header(blobs[0]).isa


def host_summary() -> dict[str, object]:
    """Hostname, CPU, CPU count and runtime version: the host part of the agent's ``devices`` answer."""
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model_name(),
        "cpu_signature": cpu_signature(),
        "cpus": os.cpu_count(),
        "runtime": runtime_dist_version(),
    }
