"""The graph registry: loading entries, versions, compiling with a saver, broken entries, the system check."""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import textwrap
import types
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import SimpleTestCase, TestCase, override_settings
from langgraph.checkpoint.memory import InMemorySaver

from orchestrator import registry
from orchestrator.errors import GraphBroken, GraphNotFound

# A state TypedDict whose annotations are strings (PEP 563) naming module
# globals (Annotated, operator): LangGraph resolves them through
# sys.modules[State.__module__], so this compiles only if the loader registers
# the module before running it.
SHOUT_GRAPH = '''
"""Shouts the text back, and notes that it did."""
from __future__ import annotations

import operator
from typing import Annotated

from typing_extensions import TypedDict
from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    text: str
    notes: Annotated[list[str], operator.add]


def shout(state: State) -> dict:
    return {"text": state["text"].upper(), "notes": ["shouted"]}


def whisper(state: State) -> dict:
    return {"text": state["text"].lower(), "notes": ["whispered"]}


builder = StateGraph(State)
builder.add_node("shout", shout)
builder.add_node("whisper", whisper)
builder.add_edge(START, "shout")
builder.add_edge("shout", "whisper")
builder.add_edge("whisper", END)
graph = builder.compile()
paused = builder.compile(interrupt_before=["whisper"])
not_a_graph = {"nodes": []}
'''

CONFIGURED_GRAPH = '''
"""Counts up."""
from typing_extensions import TypedDict
from langgraph.graph import END, START, StateGraph

LOOPGATE_RECURSION_LIMIT = 7


class State(TypedDict, total=False):
    count: int
    label: str


class Required(TypedDict):
    count: int
    ratio: float
    label: str
    tags: list[str]
    extra: dict
    flag: bool


def up(state):
    return {"count": state.get("count", 0) + 1}


builder = StateGraph(State)
builder.add_node("up", up)
builder.add_edge(START, "up")
builder.add_edge("up", END)
graph = builder

strict = StateGraph(Required)
strict.add_node("up", up)
strict.add_edge(START, "up")
strict.add_edge("up", END)
'''


def graphs(**entries: str) -> str:
    return json.dumps({"graphs": entries})


class RegistryTestCase(SimpleTestCase):
    def setUp(self) -> None:
        registry.reset()
        self.addCleanup(registry.reset)
        self.dir = Path(self.enterContext(tempfile.TemporaryDirectory()))

    def write(self, name: str, source: str) -> Path:
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
        return path

    def chdir(self, path: Path) -> None:
        old = os.getcwd()
        os.chdir(path)
        self.addCleanup(os.chdir, old)

    def run_graph(self, entry: registry.GraphEntry, data: dict[str, Any]) -> dict[str, Any]:
        compiled = entry.compile(InMemorySaver())
        return compiled.invoke(data, {"configurable": {"thread_id": "t1"}})


class BuiltinSeedTests(RegistryTestCase):
    def test_the_seed_example_is_listed_first_with_a_short_version_and_its_docstring(self) -> None:
        entry = registry.all_entries()[0]
        self.assertEqual(entry.name, "seed")
        self.assertEqual(entry.spec, "orchestrator.examples.seed:workflow")
        self.assertIsNone(entry.error)
        self.assertTrue(entry.builtin)
        self.assertRegex(entry.version, r"^[0-9a-f]{12}$")
        self.assertTrue(entry.description.startswith("A supervisor and a researcher in a loop."))
        self.assertIs(registry.get_graph("seed"), entry)

    def test_the_seed_run_through_the_registry_ends_like_the_seeds_own_app(self) -> None:
        from orchestrator.examples import seed

        entry = registry.get_graph("seed")
        self.assertIs(entry.source_graph, seed.workflow)
        self.assertEqual(entry.example_input, seed.EXAMPLE_INPUT)
        expected = seed.app.invoke(dict(seed.EXAMPLE_INPUT))
        self.assertEqual(self.run_graph(entry, dict(entry.example_input)), expected)
        self.assertEqual(expected["reports"], ["Research finding index: 0", "Research finding index: 1"])
        self.assertTrue(expected["is_complete"])

    def test_the_seed_graph_shape_and_diagram_come_from_langgraph(self) -> None:
        entry = registry.get_graph("seed")
        self.assertEqual(entry.node_count, 2)
        self.assertEqual(set(entry.nodes), {"__start__", "researcher", "supervisor", "__end__"})
        self.assertIn(("researcher", "supervisor", False), entry.edges)
        self.assertIn(("supervisor", "researcher", True), entry.edges)
        self.assertIn(("supervisor", "__end__", True), entry.edges)
        self.assertIn("graph TD", entry.mermaid)
        self.assertIn("researcher --> supervisor", entry.mermaid)

    def test_the_seed_input_schema_is_built_although_pydantic_refuses_its_typing_typeddict(self) -> None:
        schema = registry.get_graph("seed").input_schema
        self.assertEqual(schema["properties"]["task"]["type"], "string")
        self.assertEqual(schema["properties"]["reports"]["type"], "array")
        self.assertEqual(schema["properties"]["iterations"]["type"], "integer")
        self.assertEqual(schema["properties"]["is_complete"]["type"], "boolean")
        self.assertEqual(set(schema["required"]), {"task", "reports", "iterations", "is_complete"})

    def test_a_compiled_module_entry_runs_the_same(self) -> None:
        with override_settings(LOOPGATE_GRAPHS=graphs(seed_app="orchestrator.examples.seed:app")):
            entry = registry.get_graph("seed_app")
            self.assertNotEqual(entry.version, registry.get_graph("seed").version)  # the spec is part of it
            self.assertEqual(
                self.run_graph(entry, dict(entry.example_input))["reports"],
                ["Research finding index: 0", "Research finding index: 1"],
            )


class FileEntryTests(RegistryTestCase):
    def test_a_file_with_a_future_annotations_state_loads_and_runs(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(shout=f"{path}:graph")):
            entry = registry.get_graph("shout")
            self.assertEqual(entry.description, "Shouts the text back, and notes that it did.")
            self.assertEqual(entry.nodes, ["__start__", "shout", "whisper", "__end__"])
            result = self.run_graph(entry, {"text": "Hi", "notes": []})
        self.assertEqual(result, {"text": "hi", "notes": ["shouted", "whispered"]})

    def test_relative_paths_in_a_json_file_are_relative_to_that_files_folder(self) -> None:
        self.write("project/agents/shout.py", SHOUT_GRAPH)
        config = self.write("project/langgraph.json", graphs(shout="./agents/shout.py:graph"))
        elsewhere = self.dir / "elsewhere"
        elsewhere.mkdir()
        self.chdir(elsewhere)
        with override_settings(LOOPGATE_GRAPHS=str(config)):
            entry = registry.get_graph("shout")
        self.assertEqual(self.run_graph(entry, {"text": "a", "notes": []})["notes"], ["shouted", "whispered"])

    def test_relative_paths_in_json_text_are_relative_to_the_current_directory(self) -> None:
        self.write("agents/shout.py", SHOUT_GRAPH)
        self.chdir(self.dir)
        with override_settings(LOOPGATE_GRAPHS=graphs(shout="agents/shout.py:graph")):
            self.assertIsNone(registry.get_graph("shout").error)
        with override_settings(LOOPGATE_GRAPHS="langgraph.json"):  # a relative settings path, from here too
            self.write("langgraph.json", graphs(shout="agents/shout.py:graph"))
            self.assertIsNone(registry.get_graph("shout").error)

    def test_builtins_come_first_then_the_setting_in_its_order(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(zeta=f"{path}:graph", alpha=f"{path}:paused")):
            self.assertEqual([entry.name for entry in registry.all_entries()], [*registry.BUILTIN_GRAPHS, "zeta", "alpha"])

    def test_the_version_is_a_hash_of_the_source_and_the_spec(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        setting = graphs(one=f"{path}:graph", two=f"{path}:paused")
        with override_settings(LOOPGATE_GRAPHS=setting):
            one, two = registry.get_graph("one").version, registry.get_graph("two").version
            self.assertNotEqual(one, two)
            registry.reset()
            self.assertEqual(registry.get_graph("one").version, one)  # stable across loads
            self.write("shout.py", SHOUT_GRAPH.replace("notes that it did", "notes it"))
            registry.reset()
            self.assertNotEqual(registry.get_graph("one").version, one)

    def test_the_registry_reloads_when_the_setting_changes(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(shout=f"{path}:graph")):
            self.assertEqual(registry.get_graph("shout").name, "shout")
        with override_settings(LOOPGATE_GRAPHS=graphs(loud=f"{path}:graph")):
            self.assertEqual([entry.name for entry in registry.all_entries()], [*registry.BUILTIN_GRAPHS, "loud"])
            with self.assertRaises(GraphNotFound):
                registry.get_graph("shout")

    def test_module_level_settings_next_to_the_graph_are_read(self) -> None:
        path = self.write("counter.py", CONFIGURED_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(counter=f"{path}:graph", strict=f"{path}:strict")):
            counter = registry.get_graph("counter")
            strict = registry.get_graph("strict")
        self.assertEqual(counter.recursion_limit, 7)
        self.assertEqual(counter.example_input, {})  # total=False: nothing required
        self.assertIsNone(registry.get_graph("seed").recursion_limit)
        self.assertEqual(
            strict.example_input,
            {"count": 0, "ratio": 0, "label": "", "tags": [], "extra": {}, "flag": False},
        )


class CompileTests(RegistryTestCase):
    def test_a_compiled_graph_keeps_its_interrupt_before(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(paused=f"{path}:paused")):
            compiled = registry.get_graph("paused").compile(InMemorySaver())
        config = {"configurable": {"thread_id": "t1"}}
        self.assertEqual(compiled.invoke({"text": "Hi", "notes": []}, config), {"text": "HI", "notes": ["shouted"]})
        self.assertEqual(compiled.get_state(config).next, ("whisper",))
        self.assertEqual(compiled.invoke(None, config)["notes"], ["shouted", "whispered"])

    def test_a_compiled_graph_keeps_its_interrupt_after_and_gets_our_saver_instead_of_its_own(self) -> None:
        from langgraph.graph import END, START, StateGraph
        from typing_extensions import TypedDict

        class State(TypedDict):
            n: int

        builder = StateGraph(State)
        builder.add_node("a", lambda s: {"n": s["n"] + 1})
        builder.add_node("b", lambda s: {"n": s["n"] * 10})
        builder.add_edge(START, "a")
        builder.add_edge("a", "b")
        builder.add_edge("b", END)
        own_saver, ours = InMemorySaver(), InMemorySaver()
        original = builder.compile(checkpointer=own_saver, interrupt_after=["a"], name="mine")

        compiled = registry.compile_graph(original, ours)
        self.assertIs(compiled.checkpointer, ours)
        self.assertEqual(list(compiled.interrupt_after_nodes), ["a"])
        self.assertEqual(compiled.name, "mine")
        config = {"configurable": {"thread_id": "t1"}}
        compiled.invoke({"n": 1}, config)
        self.assertEqual(compiled.get_state(config).next, ("b",))
        self.assertIsNotNone(ours.get_tuple(config))
        self.assertIsNone(own_saver.get_tuple(config))

    def test_a_graph_with_a_default_error_handler_compiles_more_than_once(self) -> None:
        from langgraph.graph import END, START, StateGraph
        from typing_extensions import TypedDict

        class State(TypedDict):
            n: int

        builder = StateGraph(State)
        builder.add_node("a", lambda s: {"n": s["n"] + 1})
        builder.add_edge(START, "a")
        builder.add_edge("a", END)
        if not hasattr(builder, "set_node_defaults"):
            self.fail("this LangGraph has no set_node_defaults; drop the workaround in registry.compiling._compile_builder")
        builder.set_node_defaults(error_handler=lambda s: {"n": -1})
        original = builder.compile()
        for _ in range(2):
            compiled = registry.compile_graph(original, InMemorySaver())
            self.assertEqual(compiled.invoke({"n": 1}, {"configurable": {"thread_id": "t"}}), {"n": 2})

    def test_compiled_uses_loopgates_checkpointer_once_per_entry(self) -> None:
        saver = InMemorySaver()
        fake = types.ModuleType("orchestrator.checkpointer")
        fake.get_checkpointer = lambda: saver  # type: ignore[attr-defined]
        old = sys.modules.get("orchestrator.checkpointer")
        sys.modules["orchestrator.checkpointer"] = fake
        self.addCleanup(lambda: sys.modules.pop("orchestrator.checkpointer") if old is None
                        else sys.modules.__setitem__("orchestrator.checkpointer", old))
        entry = registry.get_graph("seed")
        self.assertIs(entry.compiled.checkpointer, saver)
        self.assertIs(entry.compiled, entry.compiled)


class LoopgateCheckpointerTests(TestCase):
    def setUp(self) -> None:
        registry.reset()
        self.addCleanup(registry.reset)

    def test_the_seed_compiled_with_loopgates_saver_ends_like_the_seeds_own_app(self) -> None:
        from orchestrator.checkpointer import get_checkpointer
        from orchestrator.examples import seed

        entry = registry.get_graph("seed")
        self.assertIs(entry.compiled.checkpointer, get_checkpointer())
        config = {"configurable": {"thread_id": "seed-thread"}}
        self.assertEqual(entry.compiled.invoke(dict(entry.example_input), config), seed.app.invoke(dict(seed.EXAMPLE_INPUT)))
        self.assertEqual(entry.compiled.get_state(config).values["iterations"], 1)


class BrokenEntryTests(RegistryTestCase):
    def broken(self) -> dict[str, str]:
        self.write("shout.py", SHOUT_GRAPH)
        self.write("boom.py", "raise RuntimeError('no API key configured')\n")
        self.write("syntax.py", "def oops(:\n")
        return {
            "missing_file": ("nowhere.py:graph", "file not found"),
            "missing_attr": ("shout.py:nope", "has no attribute 'nope'"),
            "not_a_graph": ("shout.py:not_a_graph", "is a dict, not a StateGraph or a compiled graph"),
            "import_error": ("boom.py:graph", "RuntimeError: no API key configured"),
            "syntax_error": ("syntax.py:graph", "SyntaxError"),
            "missing_module": ("no_such_package.graphs:graph", "module not found: no_such_package.graphs"),
            "no_attr_in_spec": ("shout.py", "is not \"path/to/file.py:attr\""),
        }

    def test_each_broken_entry_is_kept_with_its_reason_and_the_rest_still_load(self) -> None:
        cases = self.broken()
        self.chdir(self.dir)
        setting = graphs(good="shout.py:graph", **{name: spec for name, (spec, _) in cases.items()})
        with override_settings(LOOPGATE_GRAPHS=setting):
            entries = registry.all_entries()
            self.assertIsNone(registry.get_graph("good").error)
            by_name = {entry.name: entry for entry in entries}
            for name, (_spec, reason) in cases.items():
                with self.subTest(name):
                    entry = by_name[name]
                    self.assertIn(reason, entry.error or "")
                    self.assertIsNone(entry.source_graph)
                    with self.assertRaisesMessage(GraphBroken, reason):
                        registry.get_graph(name)
                    with self.assertRaises(GraphBroken):
                        entry.compile(InMemorySaver())
            with self.assertRaises(GraphNotFound):
                registry.get_graph("never_registered")

    def test_a_failed_import_leaves_no_half_run_module_behind(self) -> None:
        path = self.write("boom.py", "raise RuntimeError('no')\n")
        before = set(sys.modules)
        with override_settings(LOOPGATE_GRAPHS=graphs(boom=f"{path}:graph")):
            self.assertIsNotNone(registry.all_entries()[len(registry.BUILTIN_GRAPHS)].error)
        self.assertEqual({name for name in set(sys.modules) - before if name.startswith("_loopgate_graph_")}, set())

    def test_manage_py_check_names_each_broken_entry_and_its_reason(self) -> None:
        self.write("shout.py", SHOUT_GRAPH)
        self.chdir(self.dir)
        setting = graphs(good="shout.py:graph", lost="nowhere.py:graph", plain="shout.py:not_a_graph")
        with override_settings(LOOPGATE_GRAPHS=setting):
            message = self.check_output()
        self.assertIn("loopgate.W001", message)
        self.assertIn("Graph 'lost' (nowhere.py:graph) cannot be loaded: file not found", message)
        self.assertIn("Graph 'plain' (shout.py:not_a_graph) cannot be loaded: 'not_a_graph' is a dict", message)
        self.assertNotIn("'good'", message)

    def check_output(self) -> str:
        """``manage.py check``'s report: a broken entry is a warning, so the command succeeds."""
        out, err = io.StringIO(), io.StringIO()
        call_command("check", stdout=out, stderr=err)  # raises SystemCheckError on any error
        return out.getvalue() + err.getvalue()

    def test_manage_py_check_is_quiet_when_every_entry_loads(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(good=f"{path}:graph")):
            self.assertNotIn("loopgate.", self.check_output())

    def test_an_unreadable_setting_is_reported_and_the_builtins_still_load(self) -> None:
        for setting, reason in (
            ('{"graphs": ', "not valid JSON"),
            (str(self.dir / "missing.json"), "file not found"),
            ('{"graph": {}}', 'expected a JSON object of the form {"graphs"'),
        ):
            with self.subTest(setting), override_settings(LOOPGATE_GRAPHS=setting):
                self.assertIn(reason, registry.config_error() or "")
                self.assertEqual([entry.name for entry in registry.all_entries()], list(registry.BUILTIN_GRAPHS))
                message = self.check_output()
                self.assertIn("loopgate.W002", message)
                self.assertIn(reason, message)


class DeploymentOwnsTheRegistryTests(RegistryTestCase):
    def test_a_graph_of_the_deployment_named_like_an_example_replaces_it(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_GRAPHS=graphs(seed=f"{path}:graph")):
            entries = registry.all_entries()
            seed = registry.get_graph("seed")
        self.assertEqual([entry.name for entry in entries].count("seed"), 1)
        self.assertEqual([entry.name for entry in entries], ["finops", "deep_research", "seed"])
        self.assertFalse(seed.builtin)
        self.assertEqual(seed.spec, f"{path}:graph")
        self.assertEqual(seed.own_nodes, ["shout", "whisper"])
        self.assertIsNone(seed.error)

    def test_with_examples_off_only_the_deployments_graphs_are_registered(self) -> None:
        path = self.write("shout.py", SHOUT_GRAPH)
        with override_settings(LOOPGATE_EXAMPLES=False, LOOPGATE_GRAPHS=graphs(shout=f"{path}:graph")):
            self.assertEqual([entry.name for entry in registry.all_entries()], ["shout"])
            with self.assertRaises(GraphNotFound):
                registry.get_graph("seed")
        with override_settings(LOOPGATE_EXAMPLES=True):  # the setting is part of the cache key: no reset needed
            self.assertIsNone(registry.get_graph("seed").error)

    def test_examples_follow_debug_unless_set(self) -> None:
        with override_settings(DEBUG=False):
            del settings.LOOPGATE_EXAMPLES
            self.assertFalse(registry.examples_enabled())
        with override_settings(DEBUG=True):
            del settings.LOOPGATE_EXAMPLES
            self.assertTrue(registry.examples_enabled())


class ValidateInputTests(RegistryTestCase):
    def test_partial_input_of_the_right_types_is_accepted(self) -> None:
        entry = registry.get_graph("seed")
        entry.validate_input({})
        entry.validate_input({"task": "t", "iterations": 2})
        entry.validate_input(dict(entry.example_input))

    def test_keys_outside_the_schema_are_named(self) -> None:
        with self.assertRaises(ValidationError) as caught:
            registry.get_graph("seed").validate_input({"task": "t", "taks": "typo"})
        self.assertEqual(list(caught.exception.message_dict), ["taks"])
        self.assertIn("Unknown input key 'taks'", caught.exception.message_dict["taks"][0])

    def test_values_of_the_wrong_json_type_are_named(self) -> None:
        with self.assertRaises(ValidationError) as caught:
            registry.get_graph("seed").validate_input(
                {"task": 3, "reports": "one", "iterations": True, "is_complete": "no"}
            )
        errors = caught.exception.message_dict
        self.assertEqual(set(errors), {"task", "reports", "iterations", "is_complete"})
        self.assertEqual(errors["iterations"], ["Expected integer, got boolean."])

    def test_an_integer_is_a_number_and_nullable_fields_take_null(self) -> None:
        entry = registry.GraphEntry(
            name="x",
            spec="x.py:g",
            input_schema={
                "type": "object",
                "properties": {
                    "ratio": {"type": "number"},
                    "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "anything": {},
                },
            },
        )
        entry.validate_input({"ratio": 1, "note": None, "anything": object()})
        with self.assertRaises(ValidationError):
            entry.validate_input({"note": 1})
