"""Executions in the admin site, with the repair actions (ops/repair.py) for admins.

Each action asks for a reason on a confirmation page first; the reason goes on
the execution and into the audit log, as from ``manage.py repair_execution``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from ops import repair
from orchestrator import roles
from orchestrator.errors import LoopgateError
from orchestrator.models import Execution


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
                             help_text="Kept on the execution and in the audit log.")


def _repair_action(name: str, label: str, service: Any) -> Any:
    def action(modeladmin: ExecutionAdmin, request: HttpRequest, queryset: QuerySet[Execution]) -> HttpResponse | None:
        if not roles.is_admin(request.user):
            modeladmin.message_user(request, "Only admins may repair executions.", messages.ERROR)
            return None
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            done = 0
            for execution in queryset:
                try:
                    service(execution_id=execution.id, user=request.user, reason=form.cleaned_data["reason"])
                    done += 1
                except (LoopgateError, ValidationError) as exc:
                    text = exc.message if isinstance(exc, LoopgateError) else " ".join(exc.messages)
                    modeladmin.message_user(request, f"{execution.short_id}: {text}", messages.WARNING)
            if done:
                modeladmin.message_user(request, f"{label}: {done} execution(s).", messages.SUCCESS)
            return None
        return TemplateResponse(request, "ops/repair_reason.html", {
            **modeladmin.admin_site.each_context(request), "title": f"{label}: why?", "label": label,
            "action": name, "form": form, "executions": queryset,
            "diagnoses": [repair.execution_diagnose(execution_id=e.id) for e in queryset[:20]],
            "opts": modeladmin.model._meta,
        })

    action.__name__ = name
    action.short_description = label  # type: ignore[attr-defined]
    return action


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "graph_name", "status", "lease_owner", "lease_expires_at", "updated_at", "created_at")
    list_filter = ("status", "graph_name")
    search_fields = ("id", "graph_name", "lease_owner")
    ordering = ("-created_at",)
    actions = [
        _repair_action("release_lease", "Release the lease and re-queue", repair.execution_release_lease),
        _repair_action("requeue", "Re-queue", repair.execution_requeue),
        _repair_action("mark_failed", "Mark failed", repair.execution_fail),
        _repair_action("cancel", "Cancel", repair.execution_cancel_stuck),
    ]

    def get_readonly_fields(self, request: HttpRequest, obj: Execution | None = None) -> list[str]:
        # Every change goes through the services (the actions); the admin only shows the row.
        return [field.name for field in Execution._meta.fields]

    # Loopgate's admins (the group) see executions here, as superusers do; the repair
    # actions check the role again in the services.
    def has_module_permission(self, request: HttpRequest) -> bool:
        return roles.is_admin(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return roles.is_admin(request.user) or super().has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Execution | None = None) -> bool:
        return False
