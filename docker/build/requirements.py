"""Print a pip requirements list from pyproject.toml: the dependencies plus chosen extras.

Used inside the image builds (build context = the repository root), so the
images install exactly what pyproject.toml declares, with no second list to
keep in step by hand::

    python requirements.py pyproject.toml --extra airflow --exclude openvino
    python requirements.py pyproject.toml --extra encryption --no-base

``--exclude`` drops a distribution by name: the Airflow control-plane image
leaves OpenVINO out because it never runs the agent itself (SSH-only
workers, scheduler, API server); only an inference host or a worker that runs
on one needs it. Standard library only: it runs in a bare Python image.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    """PEP 503 name normalisation: ``Apache_Airflow`` and ``apache-airflow`` are one project."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str:
    match = _NAME.match(line)
    if not match:
        raise ValueError(f"not a requirement: {line!r}")
    return canonical(match.group(1))


def requirements(pyproject: Path, extras: list[str], exclude: list[str], base: bool = True) -> list[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in extras if e not in optional]
    if unknown:
        raise SystemExit(f"{pyproject}: no extra(s) {', '.join(unknown)}; known: {', '.join(sorted(optional))}")
    lines: list[str] = list(project.get("dependencies", [])) if base else []
    for extra in extras:
        lines.extend(optional[extra])
    dropped = {canonical(n) for n in exclude}
    out: list[str] = []
    for line in lines:
        if requirement_name(line) in dropped or line in out:
            continue
        out.append(line)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--extra", action="append", default=[], help="add this extra's requirements (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], help="leave this distribution out (repeatable)")
    parser.add_argument("--no-base", action="store_true", help="only the extras, not the base dependencies")
    args = parser.parse_args(argv)
    lines = requirements(args.pyproject, args.extra, args.exclude, base=not args.no_base)
    sys.stdout.write(f"# generated from {args.pyproject.name}: extras {args.extra or '-'}, without {args.exclude or '-'}\n")
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
