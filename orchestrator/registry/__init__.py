"""The graph registry: which LangGraph graphs Loopgate can run, and how.

Graphs are named in a ``langgraph.json``-style map, ``{"graphs": {"name":
"path/to/file.py:attr" or "package.module:attr"}}``, given by the setting
``LOOPGATE_GRAPHS`` (the path of such a JSON file, or the JSON text itself),
after the built-in examples of ``BUILTIN_GRAPHS`` where ``LOOPGATE_EXAMPLES``
is on (a graph of the deployment's replaces an example of the same name). An entry is a ``StateGraph``
or an already compiled graph; the registry compiles it with Loopgate's
checkpointer, keeping its interrupt settings, and records a version (a hash of
its source) so every execution shows which code ran it.

One topic per module:

- ``catalog``: which graphs the deployment has (the setting, the examples), loaded once per setting value;
- ``loading``: one entry of the map into a ``GraphEntry`` (``modules`` finds and reads its Python module);
- ``entry``: ``GraphEntry``, what was read, or why it could not be;
- ``versioning``: the version hash; ``compiling``: compiling with a checkpointer;
- ``input_schema``: the input's JSON schema, its example, the check of a given input.

An entry that cannot be loaded is kept with the reason, never raised: the web
process must come up with one bad graph file, and ``manage.py check``
(``orchestrator.checks``, a warning), the Graphs page and the server log report it.
"""

from __future__ import annotations

from orchestrator.json_schema import json_type_of, json_types, value_matches
from orchestrator.registry.catalog import (
    BUILTIN_GRAPHS, all_entries, config_error, examples_enabled, get_graph, reset,
)
from orchestrator.registry.compiling import compile_graph
from orchestrator.registry.entry import NAME_RE, EntryError, GraphEntry
from orchestrator.registry.input_schema import deep_problem, example_from_schema, input_json_schema
from orchestrator.registry.versioning import VERSION_LENGTH

__all__ = [
    "BUILTIN_GRAPHS",
    "NAME_RE",
    "VERSION_LENGTH",
    "EntryError",
    "GraphEntry",
    "all_entries",
    "compile_graph",
    "config_error",
    "deep_problem",
    "example_from_schema",
    "examples_enabled",
    "get_graph",
    "input_json_schema",
    "json_type_of",
    "json_types",
    "reset",
    "value_matches",
]
