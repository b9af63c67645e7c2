"""Forms of the trace pages: the executions filters and the fork form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from orchestrator.forms import add_service_errors, nested_under, parse_json_object
from orchestrator.models import Execution
from orchestrator.params import BoundedDateField
from traces.selectors import ExecutionFilters


class ExecutionFilterForm(forms.Form):
    q = forms.CharField(label="Search", required=False, max_length=200,
                        widget=forms.TextInput(attrs={"placeholder": "id, graph, version or user", "type": "search"}))
    graph = forms.ChoiceField(label="Graph", required=False)
    status = forms.ChoiceField(label="Status", required=False,
                               choices=[("", "Any status"), *Execution.Status.choices])
    since = BoundedDateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = BoundedDateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, graphs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["graph"].choices = [("", "Any graph"), *((name, name) for name in graphs)]

    def filters(self) -> ExecutionFilters:
        """The filters that validated; a bad value is ignored (and shown as an error), never a 500."""
        self.is_valid()  # fills cleaned_data with the fields that validated
        data = self.cleaned_data
        return ExecutionFilters(
            graph=data.get("graph") or "", status=data.get("status") or "", since=data.get("since"),
            until=data.get("until"), q=data.get("q") or "",
        )


class ForkForm(forms.Form):
    """Fork from a checkpoint: the state as JSON (only changed keys are written) and the node the edit is made as."""

    checkpoint = forms.CharField(widget=forms.HiddenInput, max_length=64)
    ns = forms.CharField(widget=forms.HiddenInput, required=False, max_length=255)
    state = forms.CharField(
        label="State (JSON)",
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "mono", "data-json": "1"}),
        help_text="Edit any value. Only keys you change are written; keys you leave out keep their value.",
    )
    as_node = forms.ChoiceField(label="As node", required=False,
                                help_text="The node the edit is recorded as; the graph goes on from its edges.")
    decide = forms.BooleanField(
        label="Count this fork as my decision", required=False,
        help_text="Only when the fork goes past a node that asks a person: instead of waiting for a reviewer, "
                  "the fork goes on, and the approval its parent waits for there is settled in your name.",
    )

    def __init__(self, *args: Any, nodes: list[str], gates: dict[str, str] | None = None, can_decide: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        gates = gates or {}
        self.fields["as_node"].choices = [
            ("", "(the last node that ran)"),
            *((n, f"{n} — asks a person: the fork will wait for review" if n in gates else n) for n in nodes),
        ]
        if not can_decide:
            del self.fields["decide"]

    def clean_state(self) -> dict[str, Any]:
        return parse_json_object(self.cleaned_data["state"], what="The state")

    def add_service_errors(self, exc: ValidationError) -> None:
        """A service's errors on the field they name; state keys go under the state, and the
        hidden checkpoint fields' on the form."""
        add_service_errors(self, exc, route=nested_under("state", fields=("as_node", "state"),
                                                          form_level=("checkpoint", "checkpoint_ns")))
