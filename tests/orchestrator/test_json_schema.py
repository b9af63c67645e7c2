"""The one JSON Schema helper: references, plain types, checks (used by the registry, payloads and forms)."""

from __future__ import annotations

from pydantic import BaseModel

from orchestrator import json_schema


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    home: Address
    work: Address | None = None


PERSON = Person.model_json_schema()  # Pydantic writes {"$ref": "#/$defs/Address"}


class TestResolve:
    def test_a_pydantic_reference_is_followed_to_its_definition(self) -> None:
        home = PERSON["properties"]["home"]
        assert "$ref" in home
        assert json_schema.resolve(home, PERSON)["properties"]["city"] == {"title": "City", "type": "string"}

    def test_a_chain_of_references_is_followed_to_its_end(self) -> None:
        root = {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"type": "integer"}}}
        assert json_schema.resolve({"$ref": "#/$defs/A"}, root) == {"type": "integer"}

    def test_what_cannot_be_followed_is_left_as_it_is(self) -> None:
        loop = {"$defs": {"A": {"$ref": "#/$defs/B"}, "B": {"$ref": "#/$defs/A"}}}
        for node, root in (
            ({"$ref": "#/$defs/Missing"}, PERSON),
            ({"$ref": "other.json#/x"}, PERSON),
            ({"$ref": "#/$defs/A"}, loop),
            ({"type": "string"}, PERSON),
            ("not a schema", PERSON),
        ):
            resolved = json_schema.resolve(node, root)
            assert resolved == node or (root is loop and "$ref" in resolved)


class TestTypesAndChecks:
    def test_the_plain_types_of_a_nullable_reference(self) -> None:
        assert json_schema.json_types(PERSON["properties"]["work"], PERSON) == ["object", "null"]
        assert json_schema.json_types({}, PERSON) is None
        assert json_schema.value_matches(3, ["number"]) and not json_schema.value_matches(True, ["integer"])

    def test_first_error_follows_references_and_trusts_a_broken_schema(self) -> None:
        error = json_schema.first_error({"name": "a", "home": {"city": 3}}, PERSON)
        assert error is not None and list(error.path) == ["home", "city"]
        assert json_schema.first_error({"name": "a", "home": {"city": "x"}}, PERSON) is None
        assert json_schema.first_error("anything", {"type": "no such type"}) is None
        numbers = [0] * 12
        numbers[2] = numbers[10] = "two"
        error = json_schema.first_error(numbers, {"type": "array", "items": {"type": "integer"}})
        assert error is not None and list(error.path) == [2]  # 2 before 10, not as text

    def test_errors_by_path_speak_to_people(self) -> None:
        errors = json_schema.errors_by_path({"home": {"city": 3}}, PERSON)
        assert errors == {"name": ["This field is required."], "home.city": ["Must be a string."]}
        assert json_schema.is_valid_schema(PERSON) and not json_schema.is_valid_schema({"type": 3})
