"""Forms of the approvals pages: inbox filters, bulk decisions, one approval's
decisions (with its edit fields), audit filters.

``DecisionForm`` only turns the POST into ``payloads.Decision`` dicts (parsing
typed fields and JSON); the complete check is the service's
(``payloads.check_decisions``), whose errors ``add_service_errors`` puts next
to the fields they name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from approvals import payloads
from approvals.models import Approval
from approvals.selectors import AGES
from orchestrator.forms import add_service_errors, parse_json
from orchestrator.json_schema import resolve
from orchestrator.params import BoundedDateField

LONG_TEXT_KEYS = {"body", "content", "message", "text", "description", "prompt", "query", "note", "comment"}


class InboxFilterForm(forms.Form):
    graph = forms.ChoiceField(label="Graph", required=False)
    age = forms.ChoiceField(label="Waiting", required=False,
                            choices=[("", "Any time")] + [(k, v[0]) for k, v in AGES.items()])
    mine = forms.BooleanField(label="Claimed by me", required=False)

    def __init__(self, *args: Any, graphs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["graph"].choices = [("", "All graphs")] + [(g, g) for g in graphs]

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        return {k: v for k, v in self.cleaned_data.items() if v}


class BulkDecisionForm(forms.Form):
    ids = forms.TypedMultipleChoiceField(coerce=str, required=False)
    decision = forms.ChoiceField(choices=[(payloads.APPROVE, "Approve"), (payloads.REJECT, "Reject")])
    comment = forms.CharField(required=False, max_length=payloads.MAX_MESSAGE)

    def __init__(self, *args: Any, pending_ids: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["ids"].choices = [(i, i) for i in pending_ids]

    def clean_ids(self) -> list[str]:
        ids = self.cleaned_data["ids"]
        if not ids:
            raise ValidationError("Select at least one approval.")
        return ids


class ClaimForm(forms.Form):
    """Nothing to fill in: the POST itself is the request (CSRF-checked)."""


# --- one approval's decisions ---------------------------------------------------------------


@dataclass
class EditField:
    key: str
    name: str  # the form field's name
    kind: str  # string, integer, number, boolean, choice, fixed (one allowed value: read-only), json
    required: bool
    nullable: bool = False


@dataclass
class ActionForm:
    """What the template needs for one action card."""

    index: int
    action: dict[str, Any]
    allowed: list[str]
    type_name: str
    message_name: str
    edit_fields: list[EditField] = field(default_factory=list)
    schema_given: bool = False


def field_kind(prop: dict[str, Any], root: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    """(kind, nullable, the property with refs resolved and a null alternative removed)."""
    prop = resolve(prop, root) if isinstance(prop, dict) else {}
    nullable = False
    for key in ("anyOf", "oneOf"):
        options = prop.get(key)
        if isinstance(options, list):
            options = [resolve(o, root) for o in options]
            real = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(real) < len(options):
                nullable = True
            if len(real) == 1 and isinstance(real[0], dict):
                prop = {**{k: v for k, v in prop.items() if k != key}, **real[0]}
    kind = prop.get("type")
    if isinstance(kind, list):
        nullable = nullable or "null" in kind
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if "const" in prop or (isinstance(prop.get("enum"), list) and len(prop["enum"]) == 1):
        return "fixed", nullable, prop  # the schema allows one value: shown, not edited
    if isinstance(prop.get("enum"), list) and all(isinstance(v, (str, int, float)) for v in prop["enum"]):
        return "choice", nullable, prop
    if kind in ("string", "integer", "number", "boolean"):
        return kind, nullable, prop
    return "json", nullable, prop


class DecisionForm(forms.Form):
    comment = forms.CharField(
        label="Message or comment",
        required=False,
        max_length=payloads.MAX_MESSAGE,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Why — or the answer to send back"}),
    )

    def __init__(self, *args: Any, approval: Approval, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", f"id_{approval.short_id}_%s")
        data = args[0] if args else kwargs.get("data")
        everything = data.get("all") if data is not None else None
        if everything in (payloads.APPROVE, payloads.REJECT):
            # "Approve all" / "Reject all": the same decision for every action.
            data = data.copy()
            for index in range(len(approval.actions or [])):
                data[f"d-{index}-type"] = everything
            args = (data, *args[1:]) if args else args
            if not args:
                kwargs["data"] = data
        super().__init__(*args, **kwargs)
        self.approval = approval
        self.actions: list[dict[str, Any]] = list(approval.actions or [])
        self.single = len(self.actions) == 1
        if self.single:
            self.fields["comment"].help_text = (
                "Sent to the agent with Reject or Respond; kept in the audit log either way."
            )
        else:
            self.fields["comment"].label = "Comment"
            self.fields["comment"].help_text = "Kept in the audit log."
            self.fields["comment"].widget.attrs["placeholder"] = "Why (optional)"
        self.cards: list[ActionForm] = []
        for index, action in enumerate(self.actions):
            self.cards.append(self._add_action_fields(index, action))

    @property
    def all_allow_approve(self) -> bool:
        return all(payloads.APPROVE in card.allowed for card in self.cards)

    @property
    def all_allow_reject(self) -> bool:
        return all(payloads.REJECT in card.allowed for card in self.cards)

    # -- building -----------------------------------------------------------------------------

    def _add_action_fields(self, index: int, action: dict[str, Any]) -> ActionForm:
        allowed = [d for d in payloads.ALL_DECISIONS if d in (action.get("allowed_decisions") or [])]
        card = ActionForm(index=index, action=action, allowed=allowed, type_name=f"d-{index}-type",
                          message_name=f"d-{index}-message")
        # The order reviewers read them in: Approve, Edit, Respond, Reject.
        shown = [d for d in (payloads.APPROVE, payloads.EDIT, payloads.RESPOND, payloads.REJECT) if d in allowed]
        choices = [(d, payloads.DECISION_LABELS[d]) for d in shown]
        self.fields[card.type_name] = forms.ChoiceField(
            label=f"Decision on {action.get('name', 'the action')}", choices=choices,
            widget=forms.RadioSelect if not self.single else forms.HiddenInput,
            error_messages={"required": "Choose a decision.",
                            "invalid_choice": "That decision is not allowed for this action."},
        )
        if not self.single:
            self.fields[card.message_name] = forms.CharField(
                label="Message to the agent", required=False, max_length=payloads.MAX_MESSAGE,
                widget=forms.Textarea(attrs={"rows": 1}),
                help_text="Needed to Respond; optional with Reject.",
            )
        if payloads.EDIT in allowed:
            self._add_edit_fields(card)
        return card

    def _add_edit_fields(self, card: ActionForm) -> None:
        args = dict(card.action.get("args") or {})
        schema, card.schema_given = payloads.edit_schema(card.action)  # type: ignore[arg-type]
        props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
        required = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
        if not card.schema_given or not props:
            # No per-argument schema: the arguments as one JSON object, any types, any keys
            # (payloads.ANY_OBJECT); a typed form would lock each to the type it came with.
            name = f"d-{card.index}-args"
            text = json.dumps(args, indent=2, ensure_ascii=False)
            rows = min(16, max(4, text.count("\n") + 2))
            self.fields[name] = forms.CharField(
                label="Arguments (JSON)", required=False, initial=text, strip=False,
                widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "false", "class": "mono json-editor"}),
            )
            card.edit_fields.append(EditField(key="", name=name, kind="json", required=True))
            return
        for key in payloads.ordered(props, card.action):  # type: ignore[arg-type]
            kind, nullable, prop = field_kind(props[key], schema)
            name = f"d-{card.index}-arg-{key}"
            label = str(prop.get("title") or key)
            help_text = str(prop.get("description") or "")
            current = args.get(key, prop.get("default"))
            is_required = key in required
            if kind == "string":
                long_text = key.lower() in LONG_TEXT_KEYS or (isinstance(current, str) and
                                                             (len(current) > 60 or "\n" in current))
                attrs: dict[str, Any] = {"spellcheck": "true" if long_text else "false"}
                if prop.get("format") == "email":
                    attrs["inputmode"] = "email"
                widget = forms.Textarea(attrs={"rows": 5, **attrs}) if long_text else forms.TextInput(attrs=attrs)
                form_field: forms.Field = forms.CharField(required=False, strip=False, widget=widget)
                initial = current if isinstance(current, str) else ("" if current is None else str(current))
            elif kind == "integer":
                form_field = forms.IntegerField(required=False)
                initial = current
            elif kind == "number":
                form_field = forms.FloatField(required=False)
                initial = current
            elif kind == "boolean":
                form_field = forms.BooleanField(required=False)
                initial = bool(current)
            elif kind == "fixed":
                value = prop["const"] if "const" in prop else prop["enum"][0]
                shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                form_field = forms.CharField(required=False, disabled=True,
                                             widget=forms.TextInput(attrs={"class": "fixed-value", "readonly": True}))
                initial = shown
                help_text = (help_text + " " if help_text else "") + "Fixed by the tool: it takes only this value."
            elif kind == "choice":
                options = [(json.dumps(v), str(v)) for v in prop["enum"]]
                if not is_required or nullable:
                    options = [("", "—")] + options
                form_field = forms.ChoiceField(required=False, choices=options)
                initial = json.dumps(current) if current is not None else ""
            else:
                form_field = forms.CharField(
                    required=False, widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"})
                )
                initial = "" if key not in args else json.dumps(current, indent=2, ensure_ascii=False)
                help_text = (help_text + " " if help_text else "") + "JSON."
            form_field.label = label
            form_field.help_text = help_text
            form_field.initial = initial
            self.fields[name] = form_field
            card.edit_fields.append(EditField(key=key, name=name, kind=kind, required=is_required,
                                              nullable=nullable))

    # -- reading -------------------------------------------------------------------------------

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        decisions: list[dict[str, Any]] = []
        comment = (cleaned.get("comment") or "").strip()
        for card in self.cards:
            kind = cleaned.get(card.type_name)
            if kind != payloads.EDIT:
                # The edit fields travel with every button; they count only for Edit.
                for edit in card.edit_fields:
                    self._errors.pop(edit.name, None)
            if not kind:
                decisions.append({})
                continue
            decision: dict[str, Any] = {"type": kind}
            if kind in (payloads.REJECT, payloads.RESPOND):
                message = comment if self.single else (cleaned.get(card.message_name) or "").strip() or comment
                decision["message"] = message
            if kind == payloads.EDIT:
                decision["args"] = self._edited_args(card)
            decisions.append(decision)
        cleaned["decisions"] = decisions
        cleaned["comment"] = comment
        return cleaned

    def _edited_args(self, card: ActionForm) -> dict[str, Any]:
        args = dict(card.action.get("args") or {})
        typed = {edit.key for edit in card.edit_fields if edit.key}
        if typed:
            # A typed form edits the arguments the schema names; the payload's other keys (the FinOps
            # request's owner, region, cost) are context, and the tool takes no others.
            args = {key: value for key, value in args.items() if key in typed}
        data = self.cleaned_data
        for edit in card.edit_fields:
            raw = data.get(edit.name)
            if edit.kind == "json":
                text = (self.data.get(edit.name) or "").strip()
                if not text:
                    if edit.key == "":
                        self.add_error(edit.name, "Give the arguments as a JSON object, e.g. {}.")
                    elif edit.required:
                        self.add_error(edit.name, "This field is required.")
                    else:
                        args.pop(edit.key, None)
                    continue
                try:
                    value = parse_json(text)
                except ValidationError as exc:
                    self.add_error(edit.name, exc)
                    continue
                if edit.key == "":
                    if not isinstance(value, dict):
                        self.add_error(edit.name, "The arguments must be a JSON object ({…}).")
                        continue
                    args = value
                else:
                    args[edit.key] = value
                continue
            if edit.kind == "boolean":
                args[edit.key] = bool(raw)
                continue
            if edit.kind == "fixed":
                continue  # the schema's one value stays as the agent sent it (validated like any other)
            if edit.kind == "choice":
                raw = json.loads(raw) if raw else None
            empty = raw is None or raw == ""
            if empty:
                if edit.nullable and edit.required:
                    args[edit.key] = None
                elif edit.required:
                    if edit.name not in self.errors:
                        self.add_error(edit.name, "This field is required.")
                else:
                    args.pop(edit.key, None)
                continue
            args[edit.key] = raw
        return args

    # -- service errors ------------------------------------------------------------------------

    def field_for(self, key: str) -> tuple[str | None, str]:
        """The form field a service error key (``"0.args.to"``) belongs to, and a prefix for its message."""
        parts = key.split(".")
        if not parts[0].isdigit() or int(parts[0]) >= len(self.cards):
            return (None, "") if key != "comment" else ("comment", "")
        card = self.cards[int(parts[0])]
        rest = parts[1:]
        if rest[:1] == ["type"]:
            return (card.type_name if not self.single else None), ""
        if rest[:1] == ["message"]:
            return ("comment" if self.single else card.message_name), ""
        if rest[:1] == ["args"]:
            path = rest[1:]
            by_key = {e.key: e.name for e in card.edit_fields}
            if path and path[0] in by_key:
                return by_key[path[0]], (".".join(path[1:]) + ": " if len(path) > 1 else "")
            if "" in by_key:
                return by_key[""], (".".join(path) + ": " if path else "")
            return None, (".".join(path) + ": " if path else "")
        return None, ""

    def add_service_errors(self, exc: ValidationError) -> None:
        add_service_errors(self, exc, route=self.field_for)

    def edit_has_errors(self, card: ActionForm) -> bool:
        return any(e.name in self.errors for e in card.edit_fields)


class AuditFilterForm(forms.Form):
    user = forms.ChoiceField(label="User", required=False)
    graph = forms.ChoiceField(label="Graph", required=False)
    date_from = BoundedDateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = BoundedDateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, users: list[str], graphs: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [("", "Everyone")] + [(u, u) for u in users]
        self.fields["graph"].choices = [("", "All graphs")] + [(g, g) for g in graphs]

    def filters(self) -> dict[str, Any]:
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        return {"actor": data.get("user") or "", "graph": data.get("graph") or "",
                "date_from": data.get("date_from"), "date_to": data.get("date_to")}
