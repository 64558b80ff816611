"""Every third-party package the library and the benchmarks import is declared in pyproject.toml."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# import name -> distribution name, where they differ
DIST = {"yaml": "pyyaml", "hydra": "hydra-core", "sklearn": "scikit-learn", "PIL": "pillow"}
# a benchmark run as a script imports its siblings by their bare names
LOCAL = {"hwnas", "benchmarks"} | {p.stem for p in (REPO / "benchmarks").glob("*.py")}


def imported_top_level(folders) -> dict[str, str]:
    """Top-level module name -> one file importing it (absolute imports only)."""
    found = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(REPO)))
    return found


def declared() -> set[str]:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    return {re.split(r"[<>=!~\[; ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_every_import_of_the_library_and_benchmarks_is_declared():
    deps = declared()
    missing = {}
    for mod, where in imported_top_level(["hwnas", "benchmarks"]).items():
        if mod in sys.stdlib_module_names or mod in LOCAL or mod == "__future__":
            continue
        if DIST.get(mod, mod).lower().replace("_", "-") not in deps:
            missing[mod] = where
    assert not missing, f"imported but not in pyproject.toml (dependencies or an extra): {missing}"
