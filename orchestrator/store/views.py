"""The admins' Store page: the items graphs keep in LangGraph's Store, filtered, and deleting them."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from orchestrator import roles
from orchestrator.forms import add_service_errors
from orchestrator.store import admin
from orchestrator.types import AuthedRequest


class StoreFilterForm(forms.Form):
    namespace = forms.CharField(required=False, max_length=2000, label="Namespace",
                                help_text="labels separated by dots (memories.ada); the namespaces below it are included.",
                                widget=forms.TextInput(attrs={"placeholder": "memories.ada", "class": "mono"}))
    key = forms.CharField(required=False, max_length=500, label="Key contains")
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean_namespace(self) -> tuple[str, ...]:
        try:
            return admin.parse_namespace(self.cleaned_data.get("namespace") or "")
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["namespace"]) from None


class StoreItemDeleteForm(forms.Form):
    namespace = forms.CharField(max_length=2000)
    key = forms.CharField(max_length=10000, strip=False)

    def clean_namespace(self) -> tuple[str, ...]:
        labels = admin.parse_namespace(self.cleaned_data["namespace"])
        if not labels:
            raise ValidationError("Name the item's namespace.")
        return labels


def _list_url(namespace: str = "", key: str = "", page: int | None = None) -> str:
    query = {name: value for name, value in (("namespace", namespace), ("key", key), ("page", page)) if value}
    return reverse("store:items") + (f"?{urlencode(query)}" if query else "")


@require_GET
@roles.admin_required
def items(request: AuthedRequest) -> HttpResponse:
    form = StoreFilterForm(request.GET)
    if not form.is_valid():
        ctx = {"form": form, "listing": None}
        return render(request, "orchestrator/store.html", ctx, status=422)
    prefix, key = form.cleaned_data["namespace"], form.cleaned_data["key"]
    listing = admin.store_item_page(user=request.user, prefix=prefix, key=key, page=form.cleaned_data["page"] or 1)
    namespace = ".".join(prefix)
    ctx = {
        "form": form, "listing": listing, "namespace": namespace, "key": key, "filtered": bool(prefix or key),
        "now": timezone.now(),
        "back": _list_url(namespace, key, listing.page if listing.page > 1 else None),
        "newer_url": _list_url(namespace, key, listing.page - 1) if listing.page > 1 else "",
        "older_url": _list_url(namespace, key, listing.page + 1) if listing.page < listing.pages else "",
        "namespace_urls": [(ns, n, _list_url(ns, key)) for ns, n in listing.namespaces],
    }
    return render(request, "orchestrator/store.html", ctx)


def _back(request: AuthedRequest) -> str:
    """Where a delete returns: the list as it was filtered (read again, never a raw URL)."""
    try:
        namespace = ".".join(admin.parse_namespace(request.POST.get("back_namespace", "")))
    except ValidationError:
        namespace = ""
    page = request.POST.get("back_page", "")
    return _list_url(namespace, request.POST.get("back_key", "")[:500], int(page) if page.isdigit() else None)


@require_POST
@roles.admin_required
def item_delete(request: AuthedRequest) -> HttpResponse:
    form = StoreItemDeleteForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Nothing was deleted: the form did not name an item.")
        return redirect(_back(request))
    namespace, key = form.cleaned_data["namespace"], form.cleaned_data["key"]
    if admin.store_item_delete(user=request.user, namespace=namespace, key=key):
        messages.success(request, f"Deleted {key} from {'.'.join(namespace)}.")
    else:
        messages.info(request, f"{key} in {'.'.join(namespace)} was already gone.")
    return redirect(_back(request))


@require_POST
@roles.admin_required
def namespace_delete(request: AuthedRequest) -> HttpResponse:
    form = StoreFilterForm(request.POST)
    if form.is_valid():
        try:
            deleted = admin.store_namespace_delete(user=request.user, prefix=form.cleaned_data["namespace"])
        except ValidationError as exc:
            add_service_errors(form, exc)
        else:
            noun = "item" if deleted == 1 else "items"
            messages.success(request, f"Deleted {deleted} {noun} under {'.'.join(form.cleaned_data['namespace'])}.")
            return redirect(_list_url())
    errors = "; ".join(m for ms in form.errors.values() for m in ms)
    messages.error(request, f"Nothing was deleted: {errors}")
    return redirect(_list_url())
