"""Count the public functions, classes and methods of a package that have no docstring.

Public means: a module-level function or class, or a method of a public class,
whose name does not start with an underscore (dunder methods are left out: a
class's docstring documents its constructor). Nested functions are left out.

With ``--params``, a definition also counts as undocumented when one of its
arguments (``self``/``cls`` aside) has no ``:param name:`` line: a function's in
its own docstring, a constructor's in its class's docstring.

Usage: ``python scripts/missing_docstrings.py [--list] [--params] [PATH ...]``
(default ``airflow_ovcache``); prints ``missing/total`` per file and in all, and
with ``--list`` every undocumented name. Exit status 0 always: it is a count, not a gate.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _undocumented_params(function: ast.FunctionDef | ast.AsyncFunctionDef, doc: str | None) -> list[str]:
    a = function.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return [n for n in names if n not in ("self", "cls") and f":param {n}:" not in (doc or "")]


def documented(node: Definition, params: bool) -> bool:
    """Whether a definition has a docstring (and, with ``params``, a ``:param:`` for every argument).

    :param node: a function, method or class.
    :param params: also require the ``:param:`` lines.
    """
    doc = ast.get_docstring(node)
    if doc is None or not params:
        return doc is not None
    if isinstance(node, ast.ClassDef):
        init = next((i for i in node.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None)
        return init is None or not _undocumented_params(init, doc)
    return not _undocumented_params(node, doc)


def public_definitions(tree: ast.Module, params: bool = False) -> list[tuple[str, bool]]:
    """``(qualified name, documented)`` of every public definition in a module.

    :param tree: the parsed module.
    :param params: count a definition with an argument missing from ``:param:`` as undocumented.
    """
    found: list[tuple[str, bool]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
            found.append((node.name, documented(node, params)))
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
                        found.append((f"{node.name}.{item.name}", documented(item, params)))
    return found


def main(argv: list[str]) -> int:
    """Print the counts for the files under the paths in ``argv``.

    :param argv: the command line's arguments (options and paths).
    """
    show = "--list" in argv
    params = "--params" in argv
    roots = [Path(a) for a in argv if not a.startswith("--")] or [Path("airflow_ovcache")]
    files = sorted({f for r in roots for f in ([r] if r.is_file() else r.rglob("*.py"))})
    missing_all = total_all = 0
    for path in files:
        found = public_definitions(ast.parse(path.read_text(encoding="utf-8")), params)
        missing = [name for name, documented in found if not documented]
        missing_all += len(missing)
        total_all += len(found)
        if found:
            print(f"{len(missing):4d}/{len(found):<4d} {path}")
        if show:
            for name in missing:
                print(f"          {name}")
    print(f"{missing_all:4d}/{total_all:<4d} in all (undocumented/public)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
