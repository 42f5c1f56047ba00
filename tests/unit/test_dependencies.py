"""Every third-party package the code imports is declared in pyproject.toml (pinned): one
that came only through another's dependencies (``mode`` through Faust, ``aiohttp`` and
``yarl`` through Faust's web server) could change or vanish with that package's upgrade."""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(spec: str) -> str:
    return re.split(r"[=<>!~\[; ]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_every_imported_third_party_package_is_declared() -> None:
    modules: set[str] = set()
    for path in (ROOT / "streamseg").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    third = sorted(m for m in modules if m not in sys.stdlib_module_names and m != "streamseg")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(d) for d in project["dependencies"]}
    declared |= {_name(d) for extra in project.get("optional-dependencies", {}).values()
                 for d in extra}
    dists = md.packages_distributions()
    undeclared = [m for m in third if m in dists
                  and not {_name(d) for d in dists[m]} & declared]
    assert undeclared == []
    assert {"mode", "aiohttp", "yarl", "faust", "river"} <= set(third)  # the scan sees them
