"""docs/architecture.md names modules and folders; every one of them must exist, so the page stays true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"


def _named_paths(text: str) -> set[str]:
    # Backticked things that look like paths: `hooks/ovcache.py`, `cli/commands/*`, `fleet/`, `warm.py`.
    found = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        if token.startswith(("python", "-", "ovcache", "@", ".")) or "(" in token or ":" in token:
            continue
        if token.endswith((".py", ".json", ".md", "/")) or token.endswith("/*"):
            found.add(token.rstrip("*").rstrip("/"))
    return found


def _exists(name: str) -> bool:
    """A path from the repository root, from the package, or (for a bare module name) anywhere in the package."""
    package = ROOT / "airflow_ovcache"
    if (ROOT / name).exists() or (package / name).exists():
        return True
    # "transport*.py" and bare names such as "warm.py" in the core's paragraph.
    return any(package.rglob(name))


def test_every_module_the_architecture_page_names_exists() -> None:
    names = _named_paths(PAGE.read_text())
    assert len(names) > 40, "the page should name the modules it describes"
    missing = sorted(name for name in names if not _exists(name))
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"


def test_every_top_level_module_is_on_the_page_and_in_the_readme() -> None:
    page = PAGE.read_text()
    readme = (ROOT / "README.md").read_text()
    package = ROOT / "airflow_ovcache"
    tops = [p.name for p in package.iterdir() if p.suffix == ".py" and p.name != "__init__.py"]
    tops += [p.name + "/" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert tops
    for name in tops:
        assert f"`airflow_ovcache/{name}`" in readme, f"README's layout table lacks airflow_ovcache/{name}"
        bare = name.rstrip("/")
        assert bare in page, f"docs/architecture.md does not place {name}"
