"""The model repository: ``<root>/<model>/<version>/`` as OpenVINO Model Server lays it out.

Paths handed to OpenVINO are kept as the user gave them (made absolute, never
resolved): for a by-path compile the blob name hashes the absolute path string,
so a warm-up through ``/srv/models`` makes a blob that a server reading
``/models`` (a symlink to it) never finds. Containment checks, on the other
hand, resolve symlinks, so that nothing leads out of the root.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..protocol.location import Location
from .errors import InvalidName, ModelNotFound
from .policy import VersionPolicy

# Formats OpenVINO reads directly, by the file that names the model. IR needs its
# .bin beside the .xml; the others are self-contained or carry their own side files.
MODEL_SUFFIXES: dict[str, str] = {
    ".xml": "ir",
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".pdmodel": "paddle",
    ".pb": "tensorflow",
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


def check_model_name(name: str) -> str:
    """A model name is one plain path component: no ``/``, no ``..``, not hidden.

    Raises :class:`InvalidName`, so a name from a request can never lead out of the repository.

    :param name: the model name.
    """
    if not isinstance(name, str) or not _NAME.match(name) or name in {".", ".."} or ".." in name:
        raise InvalidName(f"model name {name!r} is not a plain name", Location(model=str(name)))
    return name


def parse_version(text: str | int, model: str | None = None) -> int:
    """A version is a positive integer written without sign or leading zeros.

    Leading zeros are refused because OVMS would not treat ``01`` as version 1's folder.

    :param text: the version, as a number or as the folder's name.
    :param model: the model it belongs to, for the error.
    """
    raw = str(text)
    # isascii: str.isdigit() also accepts "¹" and other digits int() refuses.
    if not (raw.isascii() and raw.isdigit()) or raw.startswith("0") or len(raw) > 18 or int(raw) <= 0:
        raise InvalidName(f"version {raw!r} is not a positive integer", Location(model=model))
    return int(raw)


@dataclass(frozen=True)
class ModelVersion:
    """One version of one model, with the file OpenVINO is given."""

    model: str
    version: int
    directory: Path
    model_file: Path
    format: str

    @property
    def where(self) -> Location:
        """Model and version, for error messages about this version."""
        return Location(model=self.model, version=self.version)


class ModelRepository:
    """Read-only view of a repository root; discovery never raises for one bad folder, it notes it.

    The notes collect in ``problems``; :class:`ModelNotFound` is raised if the root is missing.

    :param root: the repository root; made absolute but not resolved (the path OpenVINO is given matters).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(os.fspath(root)))
        self.problems: list[str] = []
        if not self.root.exists():
            raise ModelNotFound(f"model repository {self.root} does not exist")
        if not self.root.is_dir():
            raise ModelNotFound(f"model repository {self.root} is not a directory")
        self._real_root = Path(os.path.realpath(self.root))

    # -- discovery ------------------------------------------------------------
    def models(self) -> list[str]:
        """Model names under the root; anything that is not a plain, contained name is left out and noted."""
        names = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            if not _is_dir(entry):
                continue
            try:
                check_model_name(entry.name)
                self._contained(Path(entry.path), Location(model=entry.name))
            except InvalidName as exc:
                self.problems.append(exc.one_line())
                continue
            names.append(entry.name)
        return names

    def versions(self, model: str) -> list[int]:
        """Version numbers present for ``model``, ascending. Non-numeric folders are ignored, as OVMS does.

        A version folder leading out of the root is left out and noted in ``problems``.

        :param model: the model name.
        """
        model_dir = self.model_dir(model)
        found = []
        for entry in os.scandir(model_dir):
            if not _is_dir(entry):
                continue
            if not (entry.name.isascii() and entry.name.isdigit()) or entry.name.startswith("0") or len(entry.name) > 18:
                continue
            try:
                self._contained(Path(entry.path), Location(model=model, version=int(entry.name)))
            except InvalidName as exc:
                self.problems.append(exc.one_line())
                continue
            found.append(int(entry.name))
        return sorted(found)

    def select(self, model: str, policy: VersionPolicy) -> list[ModelVersion]:
        """The versions of ``model`` present here that ``policy`` serves, each with its model file found.

        :param model: the model name.
        :param policy: the version policy.
        """
        return [self.version(model, v) for v in policy.select(self.versions(model))]

    # -- one version --------------------------------------------------------------
    def model_dir(self, model: str) -> Path:
        """The model's folder under the root; raises if the name is not plain, the folder is missing or leads out.

        :param model: the model name.
        """
        check_model_name(model)
        path = self.root / model
        if not path.is_dir():
            raise ModelNotFound(f"model {model!r} is not in repository {self.root}", Location(model=model))
        self._contained(path, Location(model=model))
        return path

    def version(self, model: str, version: int | str, model_file: str | None = None) -> ModelVersion:
        """One version, with the one file OpenVINO is given (see :func:`find_model_file`).

        :param model: the model name.
        :param version: the version number (or its folder name).
        :param model_file: the model file's name in the version folder, when the folder holds several.
        """
        number = parse_version(version, model)
        where = Location(model=model, version=number)
        directory = self.model_dir(model) / str(number)
        if not directory.is_dir():
            raise ModelNotFound(f"version folder {directory} does not exist", where)
        self._contained(directory, where)
        path, fmt = find_model_file(directory, model_file, where)
        self._contained(path, where)
        return ModelVersion(model, number, directory, path, fmt)

    def _contained(self, path: Path, where: Location) -> None:
        real = Path(os.path.realpath(path))
        if real != self._real_root and self._real_root not in real.parents:
            raise InvalidName(f"{path} leads out of the repository root {self.root}", where)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A folder, following links; a symlink loop or a link to nowhere is not one (and does not raise)."""
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def find_model_file(directory: Path, explicit: str | None, where: Location) -> tuple[Path, str]:
    """The one file in a version folder that OpenVINO is given.

    An explicit name wins (it must be a plain relative name); otherwise exactly one
    candidate must exist, because guessing between two would warm a blob the
    server might not use.

    :param directory: the version folder.
    :param explicit: the file's name relative to the folder, or ``None`` to find the only candidate.
    :param where: model/version for the errors.
    """
    if explicit:
        rel = Path(explicit)
        if rel.is_absolute() or ".." in rel.parts:
            raise InvalidName(f"model file {explicit!r} must be a plain name inside the version folder", where)
        path = directory / rel
        if not path.is_file():
            raise ModelNotFound(f"model file {path} does not exist", where)
        fmt = MODEL_SUFFIXES.get(path.suffix.lower(), "other")
        _check_ir_pair(path, fmt, where)
        return path, fmt
    candidates = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    if not candidates:
        raise ModelNotFound(
            f"no model file ({', '.join(MODEL_SUFFIXES)}) in {directory}",
            where,
            hint="copy the model into the version folder, or name it with --model-file",
        )
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates)
        raise ModelNotFound(
            f"several model files in {directory}: {names}",
            where,
            hint="name the one the server loads with --model-file",
        )
    path = candidates[0]
    fmt = MODEL_SUFFIXES[path.suffix.lower()]
    _check_ir_pair(path, fmt, where)
    return path, fmt


def _check_ir_pair(path: Path, fmt: str, where: Location) -> None:
    if fmt == "ir" and not path.with_suffix(".bin").is_file():
        raise ModelNotFound(f"IR model {path} has no weights file {path.with_suffix('.bin').name}", where)
