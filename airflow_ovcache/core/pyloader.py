"""The ``python`` serving profile: an in-house server's own loader, called as the server calls it.

A team whose server is a Python program exposes the function that loads a model
version, ``package.module:function``, taking the version folder, the device and
the compile properties (``CACHE_DIR`` among them) and returning what it compiled::

    def load(model_dir: str, device: str, properties: dict[str, str]):
        core = openvino.Core()
        model = core.read_model(f"{model_dir}/model.xml")
        ...                                  # whatever the server does to it
        return core.compile_model(model, device, properties)

The agent calls it in a fresh process (the loader is the team's code: an import
side effect, a crash or a leak must not take the agent down) with ``CACHE_DIR``
pointing at the agent's private staging folder, so the blobs it writes are by
construction the ones that server writes, and the agent publishes them. Load
checks and rewarm call it the same way. A returned ``CompiledModel`` answers
``LOADED_FROM_CACHE``; anything else leaves that unknown, and the agent then
judges a cache hit by whether the load wrote any new blob.

The same child makes the ``optimum`` profile's load (:mod:`.optimum`) and the ``genai``
profile's (:mod:`.genai`): a library's loader needs the same isolation, and its blobs are
published the same way.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..protocol import ErrorCode
from ..protocol.location import Location
from .errors import CompileFailed, UsageError

DEFAULT_TIMEOUT = 3600.0


def check_loader(name: Any) -> str:
    """``package.module:function``, checked for its form (not imported: that happens on the host, in a child).

    Raises :class:`UsageError` otherwise, so a typo is refused before any process starts.

    :param name: the profile's ``loader`` option.
    """
    if not isinstance(name, str) or name.count(":") != 1:
        raise UsageError(f"loader {name!r} is not package.module:function", hint="for example --loader myserver.models:load")
    module, func = name.split(":")
    parts = module.split(".")
    if not all(p.isidentifier() for p in parts) or not func.isidentifier():
        raise UsageError(f"loader {name!r} is not package.module:function", hint="for example --loader myserver.models:load")
    return name


def call_loader(options: dict[str, Any], model_dir: str, device: str, properties: dict[str, str], where: Location) -> Any:
    """Import and call the loader in this process (the child's side); errors name the loader.

    :param options: the ``python`` profile's options: ``loader`` and an optional ``python_path`` put first on ``sys.path``.
    :param model_dir: the version folder, as the server passes it.
    :param device: the device to compile for.
    :param properties: the compile properties, ``CACHE_DIR`` among them.
    :param where: host/model/version/device for the errors.
    """
    loader = check_loader(options.get("loader"))
    extra_path = options.get("python_path")
    if extra_path and extra_path not in sys.path:
        sys.path.insert(0, str(extra_path))
    module_name, func_name = loader.split(":")
    try:
        module = importlib.import_module(module_name)
        func = getattr(module, func_name)
    except Exception as exc:  # noqa: BLE001 - anything an import can raise is the loader's problem
        raise UsageError(
            f"python loader {loader} cannot be imported: {type(exc).__name__}: {exc}",
            hint="install the server's package on this host, or set the loader's python_path",
            where=where,
        ) from None
    try:
        return func(model_dir, device, dict(properties))
    except Exception as exc:  # noqa: BLE001 - the server's own code
        raise CompileFailed(f"python loader {loader} raised {type(exc).__name__}: {exc}", where) from None


def loaded_from_cache(compiled: Any) -> bool | None:
    """What the loader's return value says about ``LOADED_FROM_CACHE``; None if it is no ``CompiledModel`` or does not say.

    :param compiled: whatever the loader returned.
    """
    try:
        return bool(compiled.get_property("LOADED_FROM_CACHE"))
    except Exception:  # noqa: BLE001 - not a CompiledModel, or a device that does not say
        return None


def run_loader(
    profile: str,
    options: dict[str, Any],
    model_dir: str,
    device: str,
    properties: dict[str, str],
    where: Location,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[float, bool | None]:
    """Call the profile's loader in a fresh process; returns (seconds of the load call, LOADED_FROM_CACHE or None).

    The team's code (or the library's) then cannot crash, leak into or hang the agent; its errors
    come back as :class:`UsageError` (cannot import it) or :class:`CompileFailed`.

    :param profile: ``python`` (the team's loader function), ``optimum`` (optimum-intel's ``from_pretrained``)
        or ``genai`` (OpenVINO GenAI's pipeline constructor).
    :param options: the profile's options (``loader`` and ``python_path``, ``model_class``, or ``pipeline``).
    :param model_dir: the version folder the loader is given (:func:`model_dir_of`).
    :param device: the device to compile for.
    :param properties: the compile properties, ``CACHE_DIR`` pointing where the blobs should go.
    :param where: host/model/version/device for the errors.
    :param timeout: seconds the child may take before it is given up as hung.
    """
    request = {
        "profile": profile,
        "options": options,
        "model_dir": model_dir,
        "device": device,
        "properties": properties,
        "where": [where.host, where.model, where.version, where.device],
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow_ovcache.core.pyloader"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(os.environ),
        )
    except subprocess.TimeoutExpired:
        raise CompileFailed(f"{_what(profile, options)} did not return within {timeout:g}s", where) from None
    answer = None
    for line in reversed(proc.stdout.splitlines()):
        try:
            answer = json.loads(line)
            break
        except ValueError:
            continue
    if not isinstance(answer, dict):
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise CompileFailed(f"{_what(profile, options)} process ended without an answer: {last}", where)
    if answer.get("error"):
        err = answer["error"]
        if err.get("code") == ErrorCode.USAGE:
            raise UsageError(err["message"], hint=err.get("hint", ""), where=where)
        raise CompileFailed(err["message"], where, hint=err.get("hint", ""))
    return float(answer["seconds"]), answer.get("loaded_from_cache")


def _what(profile: str, options: dict[str, Any]) -> str:
    if profile == "optimum":
        return f"optimum profile: {options.get('model_class')}.from_pretrained"
    if profile == "genai":
        return f"genai profile: {options.get('pipeline')}"
    return f"python loader {options.get('loader')}"


def main() -> int:
    """The child: one loader call, one JSON line on stdout."""
    from .errors import OvcacheError

    request = json.loads(sys.stdin.read())
    host, model, version, device = request["where"]
    where = Location(host, model, version, device)
    call, answer = call_loader, loaded_from_cache
    if request["profile"] == "optimum":
        from . import optimum

        call, answer = optimum.load, optimum.loaded_from_cache
    elif request["profile"] == "genai":
        from . import genai

        call, answer = genai.load, genai.loaded_from_cache
    started = time.perf_counter()
    try:
        compiled = call(request["options"], request["model_dir"], request["device"], request["properties"], where)
    except OvcacheError as exc:
        print(json.dumps({"error": {"code": exc.code, "message": exc.message, "hint": exc.hint}}), flush=True)
        return 0
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "loaded_from_cache": answer(compiled)}), flush=True)
    return 0


def model_dir_of(model_path: Path) -> str:
    """The version folder a loader is given: the folder of the model file the repository found.

    :param model_path: the model file.
    """
    return str(model_path.parent)


if __name__ == "__main__":
    raise SystemExit(main())
