"""The core's forms, and what the forms of every app share.

Shared: ``add_service_errors`` puts a service's ``ValidationError`` on the fields it
names (one way for every form: start a graph, set budgets, decide an approval, fork
a state), ``nested_under`` routes the keys of a JSON field's object to that field,
and ``parse_json`` / ``parse_json_object`` read JSON typed into a form.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.text import slugify

from orchestrator import budgets as budgets_mod
from orchestrator import registry, services
from orchestrator.params import json_loads_bounded

# Where a service's errors about one key go: (the form's field, or None for the form
# itself; a prefix for each message).
Route = Callable[[str], tuple[str | None, str]]


def add_service_errors(form: forms.Form, exc: ValidationError, *, route: Route | None = None) -> None:
    """Put a service's ``ValidationError`` on ``form``: each key's messages on the field
    ``route(key)`` names, with its prefix. By default a key that names a field of the
    form goes there. A name that is no field of the form, an error without keys, and
    ``__all__`` go on the form itself, so nothing the service said is lost."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for key, messages in exc.message_dict.items():
        name, prefix = route(key) if route is not None else (key, "")
        if name is not None and name not in form.fields:
            name = None
        form.add_error(name, [prefix + message for message in messages])


def nested_under(field: str, *, fields: Collection[str] = (), form_level: Collection[str] = ()) -> Route:
    """A route for a form with one JSON object field (a graph's input, a state): a key in
    ``fields`` goes to that field, a key in ``form_level`` (and ``__all__``) to the form,
    any other key is one of the object's keys and goes to ``field`` as ``"key: message"``."""

    def route(key: str) -> tuple[str | None, str]:
        if key in form_level or key == NON_FIELD_ERRORS:
            return None, ""
        if key in fields:
            return key, ""
        return field, f"{key}: "

    return route


def parse_json(text: str) -> Any:
    """JSON typed into a form; a syntax error, nesting past ``params.MAX_JSON_DEPTH`` or a NUL is a
    ``ValidationError`` that says what (``params.json_loads_bounded``)."""
    return json_loads_bounded(text)


def parse_json_object(text: str, *, what: str) -> dict[str, Any]:
    """A JSON object typed into a form (``what``: "The input", "The state")."""
    value = parse_json(text)
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object ({{...}}).")
    return value


# --- graphs -------------------------------------------------------------------------------------


class GraphStartForm(forms.Form):
    """Start one execution of a graph: its input as JSON, and optional limits."""

    input = forms.CharField(
        label="Input (JSON)",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        error_messages={"required": "Give the input as a JSON object, e.g. {}."},
    )
    token_budget = forms.IntegerField(label="Token budget", required=False, min_value=0)
    recursion_limit = forms.IntegerField(
        label="Step limit", required=False, min_value=1, max_value=services.MAX_RECURSION_LIMIT
    )

    def __init__(self, *args: Any, entry: registry.GraphEntry, **kwargs: Any) -> None:
        # One form per card on the same page: ids must differ, names stay plain.
        kwargs.setdefault("auto_id", f"id_{entry.name}_%s")
        kwargs.setdefault("initial", {"input": json.dumps(entry.example_input, indent=2, ensure_ascii=False)})
        super().__init__(*args, **kwargs)
        self.entry = entry
        step_default = entry.recursion_limit or settings.LOOPGATE_DEFAULT_RECURSION_LIMIT
        graph_budget = budgets_mod.graph_effective_budget(entry.name).token_budget
        self.fields["token_budget"].widget.attrs["placeholder"] = f"{graph_budget:,}"
        self.fields["token_budget"].help_text = (
            f"Leave empty for the graph's budget ({graph_budget:,} tokens); only admins may give more."
        )
        self.fields["recursion_limit"].widget.attrs["placeholder"] = str(step_default)
        self.fields["recursion_limit"].help_text = "Most super-steps the graph may take. Leave empty for the default."

    def clean_input(self) -> dict[str, Any]:
        return parse_json_object(self.cleaned_data["input"], what="The input")

    def add_service_errors(self, exc: ValidationError) -> None:
        """A service's errors on the fields they name; the input's keys go under the input."""
        add_service_errors(self, exc, route=nested_under("input", fields=self.fields))


# --- budgets (admins) ---------------------------------------------------------------------------


class TokensField(forms.IntegerField):
    """A token count; "50,000" and "50 000" are read as 50000, as the page shows them."""

    widget = forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "class": "tokens-input"})

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str):
            value = value.replace(",", "").replace("_", "").replace(" ", "").replace("\u202f", "")
        return super().to_python(value)

    def prepare_value(self, value: Any) -> Any:
        return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value


_TOKENS_ERRORS = {"invalid": "Give a whole number of tokens, like 50,000.",
                  "min_value": "Give 0 or more tokens.",
                  "max_value": f"At most {budgets_mod.MAX_TOKEN_BUDGET:,} tokens."}


class DefaultBudgetForm(forms.Form):
    token_budget = TokensField(label="Default budget per execution", min_value=0,
                               max_value=budgets_mod.MAX_TOKEN_BUDGET,
                               error_messages={**_TOKENS_ERRORS, "required": "Give a number of tokens."})


class GraphBudgetForm(forms.Form):
    token_budget = TokensField(label="Budget per execution", required=False, min_value=0,
                               max_value=budgets_mod.MAX_TOKEN_BUDGET, error_messages=_TOKENS_ERRORS)
    daily_token_limit = TokensField(label="Daily token limit", required=False, min_value=0,
                                    max_value=budgets_mod.MAX_TOKEN_BUDGET, error_messages=_TOKENS_ERRORS)

    def __init__(self, *args: Any, graph_name: str, default_budget: int, **kwargs: Any) -> None:
        slug = slugify(graph_name)
        kwargs.setdefault("auto_id", f"id_budget_{slug}_%s")
        super().__init__(*args, **kwargs)
        self.form_id = f"graph-budget-form-{slug}"
        for field in self.fields.values():
            # The inputs sit in the row's cells; the form element in the last one.
            field.widget.attrs["form"] = self.form_id
        self.fields["token_budget"].widget.attrs["placeholder"] = f"default ({default_budget:,})"
        self.fields["daily_token_limit"].widget.attrs["placeholder"] = "no limit"


class RaiseBudgetForm(forms.Form):
    token_budget = TokensField(label="New budget", min_value=1, max_value=budgets_mod.MAX_TOKEN_BUDGET,
                               error_messages={**_TOKENS_ERRORS, "required": "Give the new budget in tokens."})


# --- API tokens (admins) -----------------------------------------------------------------------------


class ApiTokenForm(forms.Form):
    username = forms.ChoiceField(label="User")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = User.objects.filter(is_active=True).order_by("username").values_list("username", flat=True)
        self.fields["username"].choices = [(name, name) for name in names]
