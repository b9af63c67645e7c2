"""A graph's version: a short hash of its code, so every execution shows which code and prompts ran it."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path
from types import ModuleType

from orchestrator.registry.modules import module_source

VERSION_LENGTH = 12


def graph_version(module: ModuleType, source: str, spec: str) -> str:
    """The hash of the graph module's source, the sources beside it that it imports, and its entry."""
    return hashlib.sha256(f"{source}\n{_sibling_sources(module)}\n{spec}".encode()).hexdigest()[:VERSION_LENGTH]


def _sibling_sources(module: ModuleType) -> str:
    """The source of the files beside the graph's file that it imports from (its
    prompts, tools and helpers usually live there), so a change to any of them
    makes a new version too. Read from the module's own import statements, so
    the version never depends on what else happens to be loaded."""
    file = getattr(module, "__file__", None)
    if not file:
        return ""
    folder = Path(file).resolve().parent
    try:
        tree = ast.parse(module_source(module))
    except SyntaxError:
        return ""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[-1] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.module:
                names.add(node.module.split(".")[-1])
            if node.level:  # from . import prompts
                names.update(alias.name for alias in node.names)
    parts = []
    for name in sorted(names):
        sibling = folder / f"{name}.py"
        if sibling.is_file() and sibling != Path(file).resolve():
            try:
                parts.append(f"{sibling.name}\n{sibling.read_text(encoding='utf-8')}")
            except (OSError, UnicodeDecodeError):
                continue
    return "\n".join(parts)
