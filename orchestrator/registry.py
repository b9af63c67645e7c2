"""The graph registry: which LangGraph graphs Loopgate can run, and how.

Graphs are named in a ``langgraph.json``-style map, ``{"graphs": {"name":
"path/to/file.py:attr" or "package.module:attr"}}``, given by the setting
``LOOPGATE_GRAPHS`` (the path of such a JSON file, or the JSON text itself),
after the built-in examples of ``BUILTIN_GRAPHS``. An entry is a ``StateGraph``
or an already compiled graph; the registry compiles it with Loopgate's
checkpointer, keeping its interrupt settings, and records a version (a hash of
its source) so every execution shows which code ran it.

An entry that cannot be loaded is kept with the reason, never raised: the web
process must come up with one bad graph file, and ``manage.py check``
(``orchestrator.checks``) reports it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError

from orchestrator.errors import GraphBroken, GraphNotFound

if TYPE_CHECKING:
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.pregel import Pregel

logger = logging.getLogger(__name__)

# The built-in examples, shown before the LOOPGATE_GRAPHS entries. Adding an
# example is one line here plus its module in orchestrator/examples/.
BUILTIN_GRAPHS: dict[str, str] = {
    "seed": "orchestrator.examples.seed:workflow",
    "finops": "orchestrator.examples.finops:workflow",
    "deep_research": "orchestrator.examples.deep_research:workflow",
}

# Names appear in URLs (/graphs/<name>/start/) and in LangGraph thread metadata.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
VERSION_LENGTH = 12


class EntryError(Exception):
    """Why one entry cannot be loaded, in words meant for the person who wrote it."""


@dataclass(eq=False)
class GraphEntry:
    name: str
    spec: str
    version: str = ""
    description: str = ""
    error: str | None = None
    # Optional per-graph step limit: a module-level LOOPGATE_RECURSION_LIMIT next to the attribute.
    recursion_limit: int | None = None
    example_input: dict[str, Any] = field(default_factory=dict)
    source_graph: Any = field(default=None, repr=False)
    nodes: list[str] = field(default_factory=list)
    edges: list[tuple[str, str, bool]] = field(default_factory=list)
    mermaid: str = field(default="", repr=False)
    input_schema: dict[str, Any] = field(default_factory=dict, repr=False)
    builtin: bool = False
    # Nodes the graph's author names as human gates (LOOPGATE_GATES, or "gates" in langgraph.json).
    declared_gates: list[str] = field(default_factory=list)
    _compiled: Any = field(default=None, init=False, repr=False)

    @property
    def is_broken(self) -> bool:
        return self.error is not None

    @property
    def own_nodes(self) -> list[str]:
        """The graph's own nodes, without LangGraph's ``__start__`` / ``__end__``."""
        return [node for node in self.nodes if node not in ("__start__", "__end__")]

    @property
    def node_count(self) -> int:
        return len(self.own_nodes)

    @property
    def compiled(self) -> CompiledStateGraph:
        """The graph compiled with Loopgate's checkpointer, built on first use.

        Imported here, not at module level: the checkpointer needs the models,
        and the registry is loaded by system checks before they may be ready.
        """
        if self._compiled is None:
            if self.error is not None:
                raise GraphBroken(f"Graph {self.name!r} cannot be loaded: {self.error}", extra={"name": self.name})
            from orchestrator.checkpointer import get_checkpointer

            # Two threads may both compile on first use; either result is
            # equivalent, so no lock is needed.
            self._compiled = self.compile(get_checkpointer())
        return self._compiled

    def compile(self, checkpointer: Any) -> CompiledStateGraph:
        """Compile with the given saver, keeping the entry's interrupts and settings."""
        if self.error is not None:
            raise GraphBroken(f"Graph {self.name!r} cannot be loaded: {self.error}", extra={"name": self.name})
        return compile_graph(self.source_graph, checkpointer)

    def gates(self, pregel: Any = None) -> dict[str, str]:
        """The graph's (or one of its subgraphs') human gates, each with why (see ``orchestrator.gates``)."""
        from orchestrator import gates

        return gates.gate_reasons(pregel if pregel is not None else self.compiled, graph_name=self.name,
                                  declared=self.declared_gates)

    def validate_input(self, data: dict[str, Any]) -> None:
        """Reject keys the input schema does not have and values of the wrong JSON type.

        Deliberately permissive: missing keys are fine (LangGraph takes partial
        input), and a value whose schema names no plain JSON type is accepted.
        """
        properties = self.input_schema.get("properties")
        if not isinstance(properties, dict):
            return
        errors: dict[str, str] = {}
        allow_extra = bool(self.input_schema.get("additionalProperties"))
        for key, value in data.items():
            if key not in properties:
                if not allow_extra:
                    known = ", ".join(sorted(properties)) or "no keys"
                    errors[key] = f"Unknown input key {key!r}; this graph's input has: {known}."
                continue
            expected = json_types(properties[key], self.input_schema)
            if expected is not None and not value_matches(value, expected):
                wanted = " or ".join(expected)
                errors[key] = f"Expected {wanted}, got {json_type_of(value)}."
                continue
            problem = deep_problem(key, value, properties[key], self.input_schema)
            if problem:
                errors[key] = problem
        if errors:
            raise ValidationError(errors)


# --- public functions -------------------------------------------------------------------------


def all_entries() -> list[GraphEntry]:
    """Built-ins first, then the LOOPGATE_GRAPHS entries in file order; broken ones included."""
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


# --- loading ----------------------------------------------------------------------------------


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


def _current() -> _Loaded:
    # Keyed on the setting's value, so override_settings (or a changed setting
    # in a long-lived shell) reloads without anyone calling reset().
    global _loaded
    value = getattr(settings, "LOOPGATE_GRAPHS", "")
    key = _setting_key(value)
    loaded = _loaded
    if loaded is not None and loaded.key == key:
        return loaded
    with _lock:
        if _loaded is None or _loaded.key != key:
            _loaded = _load_all(key, value)
        return _loaded


def _load_all(key: str, value: Any) -> _Loaded:
    entries: dict[str, GraphEntry] = {}
    modules: dict[str, tuple[ModuleType, str]] = {}  # one exec per file, however many entries name it
    for name, spec in BUILTIN_GRAPHS.items():
        entries[name] = _load_entry(name, spec, base_dir=Path.cwd(), builtin=True, modules=modules)

    problem: str | None = None
    try:
        graphs, base_dir = _read_setting(value)
    except EntryError as exc:
        problem, graphs, base_dir = str(exc), {}, Path.cwd()
    for name, raw in graphs.items():
        if name in entries:
            # Replacing a built-in silently would change what "seed" means in old executions.
            entries[f"{name} (LOOPGATE_GRAPHS)"] = GraphEntry(
                name=name, spec=str(raw), error=f"the name {name!r} is already used by a built-in example"
            )
            continue
        entries[name] = _load_entry(name, raw, base_dir=base_dir, builtin=False, modules=modules)
    if problem:
        logger.warning("LOOPGATE_GRAPHS cannot be read: %s", problem)
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


def _load_entry(
    name: str, raw: Any, *, base_dir: Path, builtin: bool, modules: dict[str, tuple[ModuleType, str]]
) -> GraphEntry:
    # langgraph.json also allows {"path": ..., "description": ...} for an entry.
    description_override: str | None = None
    gates_override: Any = None
    if isinstance(raw, dict):
        spec = raw.get("path")
        description_override = raw.get("description") if isinstance(raw.get("description"), str) else None
        gates_override = raw.get("gates")
    else:
        spec = raw
    entry = GraphEntry(name=name, spec=str(spec), builtin=builtin)
    try:
        if not isinstance(spec, str) or not spec.strip():
            raise EntryError('expected "path/to/file.py:attr" or "package.module:attr"')
        if not NAME_RE.match(name):
            raise EntryError("a graph name may hold only letters, digits, '_', '.' and '-'")
        target, attr = _split_spec(spec.strip())
        module, source = _load_module(target, base_dir, modules)
        _fill_entry(entry, module, source, target, attr)
        if gates_override is not None:
            entry.declared_gates += _gate_list(gates_override, '"gates" in the graph\'s entry')
        unknown = sorted(set(entry.declared_gates) - set(entry.own_nodes))
        if unknown:
            raise EntryError(f"the gates {', '.join(unknown)} are not nodes of the graph; "
                             f"it has: {', '.join(entry.own_nodes)}")
        if description_override is not None:
            entry.description = description_override.strip()
    except EntryError as exc:
        entry.error = str(exc)
    except (Exception, SystemExit) as exc:  # a graph module may raise anything on import; it must not take us down
        entry.error = f"{type(exc).__name__}: {exc}"
        logger.warning("Graph %r (%s) cannot be loaded", name, spec, exc_info=True)
    if entry.error is not None:
        # A half-filled entry must not look usable to anyone who skips the error check.
        entry.source_graph = None
        entry.nodes, entry.edges, entry.mermaid, entry.input_schema = [], [], "", {}
    return entry


def _split_spec(spec: str) -> tuple[str, str]:
    target, sep, attr = spec.rpartition(":")  # rpartition: Windows paths have a drive colon
    if not sep or not target or not attr:
        raise EntryError(f'{spec!r} is not "path/to/file.py:attr" or "package.module:attr"')
    if not attr.isidentifier():
        raise EntryError(f"{attr!r} is not a Python name")
    return target, attr


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _load_module(
    target: str, base_dir: Path, modules: dict[str, tuple[ModuleType, str]]
) -> tuple[ModuleType, str]:
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
        modules[cache_key] = (module, _module_source(module))
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


def _module_source(module: ModuleType) -> str:
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


def _sibling_sources(module: ModuleType) -> str:
    """The source of the files beside the graph's file that it imports from (its
    prompts, tools and helpers usually live there), so a change to any of them
    makes a new version too. Read from the module's own import statements, so
    the version never depends on what else happens to be loaded."""
    import ast

    file = getattr(module, "__file__", None)
    if not file:
        return ""
    folder = Path(file).resolve().parent
    try:
        tree = ast.parse(_module_source(module))
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


def _fill_entry(entry: GraphEntry, module: ModuleType, source: str, target: str, attr: str) -> None:
    from langgraph.graph import StateGraph
    from langgraph.pregel import Pregel

    if not hasattr(module, attr):
        raise EntryError(f"{target} has no attribute {attr!r}")
    graph = getattr(module, attr)
    if not isinstance(graph, (StateGraph, Pregel)):
        raise EntryError(f"{attr!r} is a {type(graph).__name__}, not a StateGraph or a compiled graph")
    entry.source_graph = graph
    entry.version = hashlib.sha256(
        f"{source}\n{_sibling_sources(module)}\n{entry.spec}".encode()
    ).hexdigest()[:VERSION_LENGTH]
    entry.description = _prose(module.__doc__ or "")

    limit = getattr(module, "LOOPGATE_RECURSION_LIMIT", None)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise EntryError(f"LOOPGATE_RECURSION_LIMIT must be a whole number of 1 or more, not {limit!r}")
    entry.recursion_limit = limit
    entry.declared_gates = _gate_list(getattr(module, "LOOPGATE_GATES", []), "LOOPGATE_GATES")

    # Compiling without a saver validates the graph now (so `check` sees a bad
    # one) and gives the picture; runs use `compiled`, made with the checkpointer.
    preview = compile_graph(graph, None)
    drawing = preview.get_graph()
    entry.nodes = list(drawing.nodes)
    entry.edges = [(edge.source, edge.target, bool(edge.conditional)) for edge in drawing.edges]
    entry.mermaid = preview.get_graph(xray=True).draw_mermaid()
    entry.input_schema = input_json_schema(preview)

    example = getattr(module, "EXAMPLE_INPUT", None)
    if example is None:
        example = example_from_schema(entry.input_schema)
    elif not isinstance(example, dict):
        raise EntryError(f"EXAMPLE_INPUT must be a dict, not {type(example).__name__}")
    try:
        json.dumps(example)
    except (TypeError, ValueError) as exc:
        raise EntryError(f"EXAMPLE_INPUT must be JSON: {exc}") from None
    entry.example_input = copy.deepcopy(example)


def _gate_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        raise EntryError(f"{where} must be a list of node names, not {value!r}")
    return list(value)


def _prose(docstring: str) -> str:
    """A docstring as paragraphs: its hard line wraps are for the source, not the page."""
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(docstring).strip())
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs if paragraph.strip())


# --- compiling --------------------------------------------------------------------------------


def compile_graph(graph: Any, checkpointer: Any) -> Any:
    """Compile ``graph`` (a StateGraph or a compiled graph) with ``checkpointer``.

    A compiled graph is compiled again from its builder with the same
    interrupt_before / interrupt_after, store, cache, name and config, so a
    static breakpoint its author set still stops the run (and becomes an
    approval). A compiled graph's own checkpointer is replaced by ours.
    """
    from langgraph.graph import StateGraph
    from langgraph.graph.state import CompiledStateGraph
    from langgraph.pregel import Pregel

    if isinstance(graph, StateGraph):
        return _compile_builder(graph, checkpointer)
    if isinstance(graph, CompiledStateGraph):
        compiled = _compile_builder(
            graph.builder,
            checkpointer,
            interrupt_before=_as_interrupts(graph.interrupt_before_nodes),
            interrupt_after=_as_interrupts(graph.interrupt_after_nodes),
            store=graph.store,
            cache=graph.cache,
            debug=graph.debug,
            name=graph.name,
            transformers=list(graph.stream_transformers) or None,
        )
        # Settings authors assign on the compiled object rather than pass to compile().
        compiled.step_timeout = graph.step_timeout
        compiled.retry_policy = graph.retry_policy
        compiled.cache_policy = graph.cache_policy
        if graph.config:
            compiled = compiled.with_config(graph.config)
        return compiled
    if isinstance(graph, Pregel):
        # No builder (e.g. the functional API's @entrypoint): copy with our saver.
        return graph.copy(update={"checkpointer": checkpointer})
    raise TypeError(f"{type(graph).__name__} is not a StateGraph or a compiled graph")


def _as_interrupts(value: Any) -> Any:
    return value if value == "*" else list(value or [])


def _compile_builder(builder: Any, checkpointer: Any, **kwargs: Any) -> Any:
    # StateGraph.compile() adds its default error handler node to the builder
    # itself and refuses to run twice once it is there; we compile every entry
    # at least twice (preview, then with the saver), so compile a shallow copy
    # without that generated node.
    from langgraph.graph import state as state_module

    generated = getattr(state_module, "_DEFAULT_ERROR_HANDLER_NODE", None)
    if generated is not None and generated in builder.nodes:
        builder = copy.copy(builder)
        builder.nodes = {key: node for key, node in builder.nodes.items() if key != generated}
    return builder.compile(checkpointer=checkpointer, **kwargs)


# --- input schema ------------------------------------------------------------------------------


def input_json_schema(compiled: Any) -> dict[str, Any]:
    """The JSON schema of the graph's input.

    LangGraph's own ``get_input_jsonschema`` asks pydantic, which refuses a
    plain ``typing.TypedDict`` on Python < 3.12 (the seed graph's state); then
    the schema is built, as LangGraph does for other state types, from the
    channels' update types, and failing that it lists the keys with any type.
    """
    try:
        return compiled.get_input_jsonschema()
    except Exception:
        builder = getattr(compiled, "builder", None)
        if builder is None:
            return {"type": "object"}
    return _schema_from_channels(builder, compiled.get_name("Input"))


def _schema_from_channels(builder: Any, title: str) -> dict[str, Any]:
    from langgraph.channels.base import BaseChannel
    from pydantic import create_model

    typ = builder.input_schema
    keys = [key for key in builder.schemas.get(typ, {}) if isinstance(builder.channels.get(key), BaseChannel)]
    required = set(getattr(typ, "__required_keys__", ()))
    try:
        model = create_model(  # type: ignore[call-overload]
            title,
            **{key: (builder.channels[key].UpdateType, ... if key in required else None) for key in keys},
        )
        return model.model_json_schema()
    except Exception:
        schema: dict[str, Any] = {"title": title, "type": "object", "properties": {key: {} for key in keys}}
        if required:
            schema["required"] = [key for key in keys if key in required]
        return schema


_EMPTY_VALUES: dict[str, Any] = {
    "string": "",
    "integer": 0,
    "number": 0,
    "boolean": False,
    "array": [],
    "object": {},
    "null": None,
}


def example_from_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The required keys with empty / zero values: a form the user only has to fill in."""
    properties = schema.get("properties") or {}
    example: dict[str, Any] = {}
    for key in schema.get("required") or []:
        prop = _resolve(properties.get(key) or {}, schema)
        if "default" in prop:
            example[key] = copy.deepcopy(prop["default"])
        elif "const" in prop:
            example[key] = prop["const"]
        elif prop.get("enum"):
            example[key] = prop["enum"][0]
        else:
            types = json_types(prop, schema) or []
            usable = [t for t in types if t != "null"] or types
            example[key] = copy.deepcopy(_EMPTY_VALUES.get(usable[0])) if usable else None
    return example


def _resolve(prop: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return (root.get("$defs") or {}).get(ref.removeprefix("#/$defs/"), {})
    return prop


def json_types(prop: dict[str, Any], root: dict[str, Any], _depth: int = 0) -> list[str] | None:
    """The JSON types a property allows, or None when the schema does not say plainly."""
    if _depth > 5:
        return None
    prop = _resolve(prop, root)
    kind = prop.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    for union in ("anyOf", "oneOf"):
        if isinstance(prop.get(union), list):
            found: list[str] = []
            for option in prop[union]:
                types = json_types(option, root, _depth + 1)
                if types is None:
                    return None
                found.extend(t for t in types if t not in found)
            return found
    if "const" in prop:
        return [json_type_of(prop["const"])]
    if isinstance(prop.get("enum"), list) and prop["enum"]:
        return sorted({json_type_of(value) for value in prop["enum"]})
    return None


def deep_problem(key: str, value: Any, prop: dict[str, Any], root: dict[str, Any]) -> str | None:
    """The first thing the key's JSON schema rejects deep inside ``value`` (an enum
    or ``Literal`` value, a nested object's field, a list item), or None.

    Message channels are left alone: LangGraph coerces strings, tuples and dicts
    into messages, which their pydantic schema would wrongly refuse.
    """
    import json

    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    text = json.dumps(prop, default=str)
    if "Message" in text or "$ref" in text and "$defs" not in root:
        return None
    schema = {**prop, "$defs": root.get("$defs", {})}
    try:
        Draft202012Validator.check_schema(schema)
        error = next(iter(sorted(Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))), None)
    except (SchemaError, RecursionError, TypeError):
        return None
    if error is None:
        return None
    where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
    return f"{where}: {error.message}"


def json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def value_matches(value: Any, types: list[str]) -> bool:
    actual = json_type_of(value)
    return actual in types or (actual == "integer" and "number" in types)
