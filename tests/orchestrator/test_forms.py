"""What every app's forms share: a service's errors on the fields they name, and JSON typed in."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.test import SimpleTestCase

from orchestrator.forms import add_service_errors, nested_under, parse_json, parse_json_object


class _StartForm(forms.Form):
    input = forms.CharField()
    token_budget = forms.IntegerField(required=False)
    checkpoint = forms.CharField(required=False, widget=forms.HiddenInput)


def _form() -> _StartForm:
    form = _StartForm({"input": "{}", "token_budget": "5"})
    assert form.is_valid()
    return form


class AddServiceErrorsTests(SimpleTestCase):
    def test_a_key_that_names_a_field_goes_there_the_rest_on_the_form(self):
        form = _form()
        add_service_errors(form, ValidationError({"token_budget": "Too many.", "graph_name": "Unknown graph."}))
        self.assertEqual(form.errors["token_budget"], ["Too many."])
        self.assertEqual(form.non_field_errors(), ["Unknown graph."])

    def test_an_error_without_keys_goes_on_the_form(self):
        form = _form()
        add_service_errors(form, ValidationError(["One.", "Two."]))
        self.assertEqual(form.non_field_errors(), ["One.", "Two."])

    def test_keys_of_a_json_object_go_under_its_field_with_the_key_as_prefix(self):
        form = _form()
        route = nested_under("input", fields=("input", "token_budget"), form_level=("checkpoint",))
        add_service_errors(form, ValidationError({
            "account": ["Required.", "Unknown."], "token_budget": "Too many.",
            "checkpoint": "Gone.", "__all__": "Not now.",
        }), route=route)
        self.assertEqual(form.errors["input"], ["account: Required.", "account: Unknown."])
        self.assertEqual(form.errors["token_budget"], ["Too many."])
        self.assertNotIn("checkpoint", form.errors)  # a hidden field: its errors are shown on the form
        self.assertEqual(form.non_field_errors(), ["Gone.", "Not now."])

    def test_a_route_to_no_field_of_the_form_keeps_the_message_on_the_form(self):
        form = _form()
        add_service_errors(form, ValidationError({"0.args.to": "Bad address."}),
                           route=lambda key: ("edit-0-to", "to: "))
        self.assertEqual(form.non_field_errors(), ["to: Bad address."])


class ParseJsonTests(SimpleTestCase):
    def test_a_syntax_error_says_where(self):
        with self.assertRaisesMessage(ValidationError, "Not valid JSON: Expecting value (line 1, column 7)."):
            parse_json('{"a": }')

    def test_an_object_is_required_where_one_is_asked_for(self):
        self.assertEqual(parse_json_object('{"a": [1]}', what="The input"), {"a": [1]})
        self.assertEqual(parse_json("[1]"), [1])
        with self.assertRaisesMessage(ValidationError, "The state must be a JSON object ({...})."):
            parse_json_object("[1]", what="The state")
