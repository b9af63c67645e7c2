"""Which graphs this deployment has: the ``LOOPGATE_GRAPHS`` entries and, where
``LOOPGATE_EXAMPLES`` is on, the built-in examples; loaded once per value of
those settings and kept for the process.

The deployment owns the names: a ``LOOPGATE_GRAPHS`` graph named like an
example replaces it (the example module is not even imported). Old executions
of the example keep their graph version, so the trace still says which code ran.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

from orchestrator.errors import GraphBroken, GraphNotFound
from orchestrator.registry.entry import EntryError, GraphEntry
from orchestrator.registry.loading import load_entry
from orchestrator.registry.modules import ModuleCache

logger = logging.getLogger("orchestrator.registry")

# The built-in examples, shown before the LOOPGATE_GRAPHS entries when
# LOOPGATE_EXAMPLES is on. Adding an example is one line here plus its module
# in orchestrator/examples/.
BUILTIN_GRAPHS: dict[str, str] = {
    "seed": "orchestrator.examples.seed:workflow",
    "finops": "orchestrator.examples.finops:workflow",
    "deep_research": "orchestrator.examples.deep_research:workflow",
}


def all_entries() -> list[GraphEntry]:
    """The examples not replaced (when on), then the LOOPGATE_GRAPHS entries in file order; broken ones included."""
    return list(_current().entries.values())


def get_graph(name: str) -> GraphEntry:
    entry = _current().entries.get(name)
    if entry is None:
        raise GraphNotFound(f"There is no graph named {name!r}.", extra={"name": name})
    if entry.error is not None:
        raise GraphBroken(
            f"Graph {name!r} cannot be loaded: {entry.error}", extra={"name": name, "error": entry.error}
        )
    return entry


def config_error() -> str | None:
    """Why the LOOPGATE_GRAPHS setting itself could not be read, if it could not."""
    return _current().config_error


def reset() -> None:
    """Forget the loaded graphs; the next call loads them again (tests, reloads)."""
    global _loaded
    with _lock:
        _loaded = None


@dataclass
class _Loaded:
    key: str
    entries: dict[str, GraphEntry]
    config_error: str | None


_lock = threading.RLock()
_loaded: _Loaded | None = None


def _setting_key(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value or "")


def examples_enabled() -> bool:
    """Whether the built-in examples are registered: ``LOOPGATE_EXAMPLES`` (on with DEBUG unless set)."""
    return bool(getattr(settings, "LOOPGATE_EXAMPLES", settings.DEBUG))


def _current() -> _Loaded:
    # Keyed on the settings' values, so override_settings (or a changed setting
    # in a long-lived shell) reloads without anyone calling reset().
    global _loaded
    value = getattr(settings, "LOOPGATE_GRAPHS", "")
    examples = examples_enabled()
    key = f"{examples}:{_setting_key(value)}"
    loaded = _loaded
    if loaded is not None and loaded.key == key:
        return loaded
    with _lock:
        if _loaded is None or _loaded.key != key:
            _loaded = _load_all(key, value, examples=examples)
        return _loaded


def _load_all(key: str, value: Any, *, examples: bool) -> _Loaded:
    problem: str | None = None
    try:
        graphs, base_dir = _read_setting(value)
    except EntryError as exc:
        problem, graphs, base_dir = str(exc), {}, Path.cwd()
        logger.warning("LOOPGATE_GRAPHS cannot be read: %s", problem)

    entries: dict[str, GraphEntry] = {}
    modules: ModuleCache = {}
    if examples:
        for name, spec in BUILTIN_GRAPHS.items():
            if name in graphs:
                logger.info("LOOPGATE_GRAPHS names a graph %r: it replaces the built-in example of that name", name)
                continue
            entries[name] = load_entry(name, spec, base_dir=Path.cwd(), builtin=True, modules=modules)
    for name, raw in graphs.items():
        entries[name] = load_entry(name, raw, base_dir=base_dir, builtin=False, modules=modules)
    return _Loaded(key=key, entries=entries, config_error=problem)


def _read_setting(value: Any) -> tuple[dict[str, Any], Path]:
    """The ``graphs`` map and the folder relative file paths are resolved against."""
    base_dir = Path.cwd()
    if isinstance(value, dict):
        data: Any = value
    else:
        text = str(value or "").strip()
        if not text:
            return {}, base_dir
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise EntryError(f"not valid JSON: {exc}") from None
        else:
            path = Path(text).expanduser()
            if not path.is_absolute():
                path = base_dir / path
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise EntryError(f"file not found: {path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise EntryError(f"cannot read {path}: {exc}") from None
            except json.JSONDecodeError as exc:
                raise EntryError(f"{path} is not valid JSON: {exc}") from None
            base_dir = path.parent
    graphs = data.get("graphs") if isinstance(data, dict) else None
    if not isinstance(graphs, dict):
        raise EntryError('expected a JSON object of the form {"graphs": {"name": "path/to/file.py:attr"}}')
    return graphs, base_dir
