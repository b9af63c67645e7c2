"""Starting an execution checks its input against the graph's state schema, deep
down, so a bad value is refused with its field named instead of failing on a worker."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from orchestrator import registry, services
from orchestrator.models import Execution


@pytest.mark.django_db
class InputValidationTests:
    def start(self, data: dict) -> None:
        services.execution_start(graph_name="t_typed", input=data, user=None)

    def test_a_good_input_and_a_partial_one_are_accepted(self, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
        with django_capture_on_commit_callbacks(execute=False):
            self.start({"mode": "fast", "target": {"host": "db", "port": 5432}, "retries": [1, 2]})
            self.start({"mode": "careful"})
        assert Execution.objects.count() == 2

    @pytest.mark.parametrize(
        ("data", "field", "words"),
        [
            ({"mode": "reckless"}, "mode", "'reckless' is not one of ['fast', 'careful']"),
            ({"target": {"host": "db", "port": "5432"}}, "target", "target.port: '5432' is not of type 'integer'"),
            ({"retries": [1, "two"]}, "retries", "retries[1]: 'two' is not of type 'integer'"),
            ({"target": {"host": "db"}}, "target", "'port' is a required property"),
            ({"mood": "fast"}, "mood", "Unknown input key 'mood'"),
        ],
    )
    def test_a_bad_value_is_refused_naming_the_field_and_nothing_is_created(self, data, field, words) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError) as caught:
            self.start(data)
        assert field in caught.value.message_dict
        assert words in " ".join(caught.value.message_dict[field])
        assert not Execution.objects.exists()

    def test_message_channels_are_left_to_langgraph(self) -> None:
        entry = registry.get_graph("t_typed")
        entry.validate_input({"messages": ["hello", ["user", "hi"], {"role": "user", "content": "hey"}]})


class GraphVersionTests:
    def test_a_change_to_a_module_the_graph_imports_from_its_folder_is_a_new_version(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        import json

        from django.test import override_settings

        (tmp_path / "prompts_v.py").write_text('SYSTEM = "Be brief."\n')
        (tmp_path / "agent_v.py").write_text(
            "from typing_extensions import TypedDict\n"
            "from langgraph.graph import StateGraph, START, END\n"
            "from prompts_v import SYSTEM\n"
            "class S(TypedDict):\n    x: str\n"
            "def node(s):\n    return {'x': SYSTEM}\n"
            "graph = StateGraph(S)\ngraph.add_node('node', node)\n"
            "graph.add_edge(START, 'node')\ngraph.add_edge('node', END)\n"
        )
        import sys

        sys.path.insert(0, str(tmp_path))
        try:
            setting = json.dumps({"graphs": {"agent": f"{tmp_path}/agent_v.py:graph"}})
            with override_settings(LOOPGATE_GRAPHS=setting):
                before = registry.get_graph("agent").version
            (tmp_path / "prompts_v.py").write_text('SYSTEM = "Be thorough."\n')
            sys.modules.pop("prompts_v", None)
            registry.reset()
            with override_settings(LOOPGATE_GRAPHS=setting):
                after = registry.get_graph("agent").version
            assert before != after
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("prompts_v", None)
            registry.reset()
