"""Finding the Python module an entry names (a file path or a dotted name) and reading its source."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

from orchestrator.registry.entry import EntryError

# One exec per file however many entries name it: "key" → (module, source), filled by load_module.
ModuleCache = dict[str, tuple[ModuleType, str]]


def split_spec(spec: str) -> tuple[str, str]:
    """``"path/to/file.py:attr"`` or ``"package.module:attr"`` as ``(target, attr)``."""
    target, sep, attr = spec.rpartition(":")  # rpartition: Windows paths have a drive colon
    if not sep or not target or not attr:
        raise EntryError(f'{spec!r} is not "path/to/file.py:attr" or "package.module:attr"')
    if not attr.isidentifier():
        raise EntryError(f"{attr!r} is not a Python name")
    return target, attr


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def load_module(target: str, base_dir: Path, modules: ModuleCache) -> tuple[ModuleType, str]:
    """The module an entry names (a file path or a dotted module name) and its source text."""
    if _is_file_target(target):
        path = Path(target).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        path = path.resolve()
        cache_key = f"file:{path}"
        if cache_key not in modules:
            modules[cache_key] = _load_file_module(path)
        return modules[cache_key]
    cache_key = f"module:{target}"
    if cache_key not in modules:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            # The named module itself (or its package) is missing, as opposed
            # to a missing dependency that it imports: say so plainly.
            if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
                raise EntryError(f"module not found: {target}") from None
            raise
        modules[cache_key] = (module, module_source(module))
    return modules[cache_key]


def _load_file_module(path: Path) -> tuple[ModuleType, str]:
    """Load a graph file the way langgraph-api does: a module registered in
    ``sys.modules`` *before* it runs. A ``from __future__ import annotations``
    state TypedDict is resolved through ``sys.modules[cls.__module__]`` when
    the graph is built, so without the registration it fails to compile.
    """
    if not path.is_file():
        raise EntryError(f"file not found: {path}")
    source = path.read_text(encoding="utf-8")
    # Deterministic per path, so every process (web, workers) names the module
    # alike and checkpointed values of classes defined there load again.
    stem = re.sub(r"\W", "_", path.stem)
    module_name = f"_loopgate_graph_{stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:10]}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise EntryError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)  # as the import system does: no half-run module left behind
        raise
    return module, source


def module_source(module: ModuleType) -> str:
    """The module's source text ("" when it has none to read)."""
    file = getattr(module, "__file__", None)
    if file:
        try:
            return Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            pass
    try:
        return inspect.getsource(module)
    except (OSError, TypeError):
        return ""
