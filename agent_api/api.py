"""LangGraph's Agent Server API under ``/langgraph/``: assistants, threads, runs, state and history.

Paths, bodies and answers follow the ``langgraph_sdk`` client and its ``schema.py``.
Each view parses the request, calls a selector or a service and shapes the answer
(``agent_api.shapes``); errors are ``{"message", "code", "extra"}`` plus LangGraph's
``detail``, and invalid input answers 422 as LangGraph's server does.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from agent_api import selectors, services, shapes, wakeup, webhooks
from agent_api.auth import ApiKeyAuthentication
from agent_api.errors import NotImplementedYet, NotSupported
from agent_api.models import QueuedRun, Run, Thread
from orchestrator.api.plumbing import exception_handler as loopgate_exception_handler
from orchestrator.models import Execution

WAIT_POLL_SECONDS = 0.2
QUEUE_NUDGE_SECONDS = 2.0
# LangGraph's server queues a run on a busy thread unless told otherwise; so do we.
DEFAULT_MULTITASK_STRATEGY = "enqueue"
RUN_STATUSES = {"pending": [Execution.Status.QUEUED], "running": [Execution.Status.RUNNING],
                "error": [Execution.Status.FAILED, Execution.Status.BUDGET_EXCEEDED],
                "success": [Execution.Status.SUCCEEDED],
                "interrupted": [Execution.Status.INTERRUPTED, Execution.Status.CANCELLED], "timeout": []}
THREAD_STATUSES = ("idle", "busy", "interrupted", "error")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = loopgate_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict):
        if response.status_code == 400 and response.data.get("code") in ("invalid", "parse_error"):
            response.status_code = 422
        response.data["detail"] = response.data.get("message")
    return response


class LangGraphApi(APIView):
    authentication_classes = [ApiKeyAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    schema = None  # LangGraph's own OpenAPI describes these paths; ours documents /api/v1/

    def get_exception_handler(self) -> Any:
        return exception_handler


def _body(request: Request) -> dict[str, Any]:
    data = request.data
    if data in (None, "") or (hasattr(data, "keys") and not data):
        return {}
    if not isinstance(data, dict):
        raise ValidationError({"body": "The request body must be a JSON object."})
    return dict(data)


def _int(value: Any, name: str, default: int, *, low: int = 0, high: int = 1000) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "Must be an integer."}) from None
    if isinstance(value, bool) or not low <= number <= high:
        raise ValidationError({name: f"Must be between {low} and {high}."})
    return number


def _object(data: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is not None and not isinstance(value, dict):
        raise ValidationError({name: "Must be a JSON object."})
    return value


def _page(items: list[Any], data: dict[str, Any], default: int = 10) -> list[Any]:
    limit = _int(data.get("limit"), "limit", default, high=1000)
    offset = _int(data.get("offset"), "offset", 0, high=10**9)
    return items[offset:offset + limit]


# --- assistants ------------------------------------------------------------------------------------------


class AssistantSearchApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        return Response(_page(_assistants(_body(request)), _body(request)))


class AssistantCountApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        return Response(len(_assistants(_body(request))))


def _assistants(data: dict[str, Any]) -> list[dict[str, Any]]:
    found = [shapes.assistant(entry) for entry in selectors.assistant_list()]
    if data.get("graph_id"):
        found = [a for a in found if a["graph_id"] == data["graph_id"]]
    if data.get("name"):
        found = [a for a in found if str(data["name"]).lower() in a["name"].lower()]
    metadata = _object(data, "metadata")
    found = [a for a in found if selectors.matches(a["metadata"], metadata)]
    sort_by = data.get("sort_by") or "created_at"
    if sort_by not in ("assistant_id", "graph_id", "name", "created_at", "updated_at"):
        raise ValidationError({"sort_by": "Sort by assistant_id, graph_id, name, created_at or updated_at."})
    found.sort(key=lambda a: (a[sort_by], a["graph_id"]), reverse=(data.get("sort_order") or "desc") == "desc")
    return found


class AssistantCreateApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        raise NotSupported("Creating assistants is not served yet: every registered graph is an assistant "
                           "(POST /assistants/search lists them).")


class AssistantDetailApi(LangGraphApi):
    def get(self, request: Request, assistant_id: str) -> Response:
        return Response(shapes.assistant(selectors.assistant_entry(assistant_id)))

    def patch(self, request: Request, assistant_id: str) -> Response:
        raise NotSupported("Changing assistants is not served yet: an assistant is a registered graph.")

    def delete(self, request: Request, assistant_id: str) -> Response:
        raise NotSupported("Deleting assistants is not served: an assistant is a registered graph.")


class AssistantVersionsApi(LangGraphApi):
    def post(self, request: Request, assistant_id: str) -> Response:
        return Response([shapes.assistant(selectors.assistant_entry(assistant_id))])


class AssistantLatestApi(LangGraphApi):
    def post(self, request: Request, assistant_id: str) -> Response:
        raise NotSupported("Assistant versions are not served yet: each graph has one version, 1.")


class AssistantGraphApi(LangGraphApi):
    def get(self, request: Request, assistant_id: str) -> Response:
        entry = selectors.assistant_entry(assistant_id)
        raw = request.query_params.get("xray")
        xray: bool | int = False
        if raw in ("true", "True"):
            xray = True
        elif raw not in (None, "", "false", "False"):
            xray = _int(raw, "xray", 1, low=1, high=100)
        drawn = entry.compiled.get_graph(xray=xray).to_json()
        for node in drawn.get("nodes", []):
            if isinstance(node.get("data"), dict):
                node["data"].pop("id", None)
        return Response(drawn)


class AssistantSchemasApi(LangGraphApi):
    def get(self, request: Request, assistant_id: str) -> Response:
        entry = selectors.assistant_entry(assistant_id)
        return Response({"graph_id": entry.name, **shapes.graph_schemas(entry.compiled)})


class AssistantSubgraphsApi(LangGraphApi):
    def get(self, request: Request, assistant_id: str, namespace: str | None = None) -> Response:
        entry = selectors.assistant_entry(assistant_id)
        recurse = request.query_params.get("recurse") in ("true", "True")
        found = {ns: shapes.graph_schemas(sub)
                 for ns, sub in entry.compiled.get_subgraphs(namespace=namespace, recurse=recurse)}
        return Response(found)


# --- threads ---------------------------------------------------------------------------------------------


class ThreadCreateApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        data = _body(request)
        if data.get("supersteps"):
            raise NotSupported("supersteps are not served yet: create the thread, then update its state.")
        thread = services.thread_create(user=request.user, thread_id=data.get("thread_id"),
                                        metadata=_object(data, "metadata"), if_exists=data.get("if_exists") or "raise")
        return Response(selectors.thread_body(thread))


class ThreadSearchApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        data = _body(request)
        limit = _int(data.get("limit"), "limit", 10, high=1000)
        offset = _int(data.get("offset"), "offset", 0, high=10**9)
        return Response(_threads(request, data, page=(offset, limit)))


class ThreadCountApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        return Response(_threads(request, _body(request), page=None))


def _threads(request: Request, data: dict[str, Any], *, page: tuple[int, int] | None) -> Any:
    """The threads a search names, a page of them as thread bodies (``page=(offset, limit)``), or their count."""
    status = data.get("status")
    if status is not None and status not in THREAD_STATUSES:
        raise ValidationError({"status": f"Choose one of {', '.join(THREAD_STATUSES)}."})
    sort_by = data.get("sort_by") or "created_at"
    if sort_by not in ("thread_id", "status", "created_at", "updated_at", "state_updated_at"):
        raise ValidationError({"sort_by": "Sort by thread_id, status, created_at, updated_at or state_updated_at."})
    ids = data.get("ids")
    if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
        raise ValidationError({"ids": "A list of thread ids."})
    return selectors.thread_search(
        user=request.user, metadata=_object(data, "metadata"), values=_object(data, "values"), status=status,
        ids=[i for i in ids if _is_uuid(i)] if ids is not None else None, sort_by=sort_by,
        descending=(data.get("sort_order") or "desc") == "desc", page=page)


def _is_uuid(value: Any) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class ThreadDetailApi(LangGraphApi):
    def get(self, request: Request, thread_id: str) -> Response:
        return Response(selectors.thread_body(selectors.thread_get_for_user(user=request.user, thread_id=thread_id)))

    def patch(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        thread = services.thread_patch(user=request.user, thread=thread, metadata=_object(_body(request), "metadata"))
        return Response(selectors.thread_body(thread))

    def delete(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        services.thread_delete(user=request.user, thread=thread)
        return Response(status=204)


class ThreadCopyApi(LangGraphApi):
    def post(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        return Response(selectors.thread_body(services.thread_copy(user=request.user, thread=thread)))


class ThreadStateApi(LangGraphApi):
    def get(self, request: Request, thread_id: str, checkpoint_id: str | None = None) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        subgraphs = request.query_params.get("subgraphs") in ("true", "True", "1")
        checkpoint = {"checkpoint_id": checkpoint_id} if checkpoint_id else None
        return Response(selectors.thread_state(thread, checkpoint, subgraphs=subgraphs))

    def post(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        data = _body(request)
        checkpoint = _object(data, "checkpoint") or ({"checkpoint_id": data["checkpoint_id"]}
                                                     if data.get("checkpoint_id") else None)
        as_node = data.get("as_node")
        if as_node is not None and not isinstance(as_node, str):
            raise ValidationError({"as_node": "Must be a node's name."})
        return Response(services.thread_update_state(user=request.user, thread=thread, values=data.get("values"),
                                                     as_node=as_node, checkpoint=checkpoint))


class ThreadStateAtApi(LangGraphApi):
    def post(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        data = _body(request)
        checkpoint = _object(data, "checkpoint")
        if not checkpoint or not checkpoint.get("checkpoint_id"):
            raise ValidationError({"checkpoint": "Give the checkpoint: {checkpoint_id, checkpoint_ns}."})
        return Response(selectors.thread_state(thread, checkpoint, subgraphs=bool(data.get("subgraphs"))))


class ThreadHistoryApi(LangGraphApi):
    def post(self, request: Request, thread_id: str) -> Response:
        return self._history(request, thread_id, _body(request))

    def get(self, request: Request, thread_id: str) -> Response:
        params = request.query_params
        return self._history(request, thread_id, {"limit": params.get("limit"),
                                                  "before": {"checkpoint_id": params["before"]}
                                                  if params.get("before") else None})

    def _history(self, request: Request, thread_id: str, data: dict[str, Any]) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        before = data.get("before")
        if isinstance(before, str):
            before = {"checkpoint_id": before}
        if before is not None and not isinstance(before, dict):
            raise ValidationError({"before": "A checkpoint id or {checkpoint_id}."})
        return Response(selectors.thread_history(
            thread, limit=_int(data.get("limit"), "limit", 10, low=1), before=before,
            metadata=_object(data, "metadata"), checkpoint=_object(data, "checkpoint")))


# --- runs ------------------------------------------------------------------------------------------------

STREAM_FIELDS = ("stream_mode", "stream_subgraphs", "stream_resumable", "on_disconnect")
IGNORED_RUN_FIELDS = ("stream_mode", "stream_subgraphs", "stream_resumable", "on_disconnect", "durability",
                      "checkpoint_during", "feedback_keys", "langsmith_tracer", "strict_resume", "on_completion")


def _start(request: Request, thread_id: str | None,
           prepare: Callable[[Run | QueuedRun], None] | None = None) -> Run | QueuedRun:
    """Create a run from a LangGraph run request: a new execution, or a resume of the waiting one.
    One transaction: a refused request leaves no thread behind (a stateless run's, or ``if_not_exists``').
    ``prepare`` is called with the run inside it, before any worker is told to start (a stream's log)."""
    data = _body(request)
    if data.get("after_seconds"):
        raise NotSupported("after_seconds is not served yet.")
    webhook = webhooks.check_url(data["webhook"]) if data.get("webhook") else ""
    strategy = data.get("multitask_strategy") or DEFAULT_MULTITASK_STRATEGY
    if strategy == "interrupt" and thread_id is not None and _is_uuid(thread_id):
        existing = selectors.thread_list_for_user(user=request.user).filter(id=thread_id).first()
        if existing is not None:
            # Before the transaction: the cancel must commit for the worker to see it and stop.
            services.runs_interrupt_busy(user=request.user, thread=existing)
    with transaction.atomic():
        if thread_id is None:
            thread = services.thread_create(user=request.user)
        elif data.get("if_not_exists") == "create" and _is_uuid(thread_id):
            thread = services.thread_create(user=request.user, thread_id=thread_id, if_exists="do_nothing")
        else:
            thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)  # 404 when missing
        run = _start_on(request, data, thread, webhook, strategy)
        if prepare is not None:
            prepare(run)
        return run


def _start_on(request: Request, data: dict[str, Any], thread: Thread, webhook: str,
              strategy: str) -> Run | QueuedRun:
    command = _object(data, "command")
    if command and "resume" in command:
        if set(command) - {"resume"} or webhook:
            raise NotSupported("command.resume goes alone here: update, goto or a webhook with a resume are not "
                               "served yet.")
        return services.run_resume(user=request.user, thread=thread, resume=command["resume"])
    if not data.get("assistant_id"):
        raise ValidationError({"assistant_id": "Name the assistant (a graph's name or its assistant id)."})
    entry = selectors.assistant_entry(str(data["assistant_id"]))
    config = _object(data, "config") or {}
    checkpoint = _object(data, "checkpoint") or {}
    checkpoint_id = data.get("checkpoint_id") or checkpoint.get("checkpoint_id")
    for name in ("interrupt_before", "interrupt_after"):
        value = data.get(name)
        if value is not None and value != "*" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValidationError({name: 'A list of node names, or "*".'})
    kwargs = {key: data.get(key) for key in ("input", "command", "config", "context", "interrupt_before",
                                             "interrupt_after", "checkpoint_id", "checkpoint")}
    kwargs.update({key: data[key] for key in STREAM_FIELDS if key in data})
    return services.run_start(
        user=request.user, thread=thread, entry=entry, input=data.get("input"),
        command=command or None, checkpoint_id=checkpoint_id, configurable=_object(config, "configurable"),
        context=_object(data, "context"), interrupt_before=data.get("interrupt_before"),
        interrupt_after=data.get("interrupt_after"), recursion_limit=config.get("recursion_limit"),
        metadata=_object(data, "metadata"), multitask_strategy=strategy,
        kwargs={**kwargs, "webhook": webhook or None}, webhook=webhook,
    )


def _wait(run: Run | QueuedRun) -> Any:
    """Block until the run stops (ends, or waits for people), then its output. A queued run is
    waited for through its turn (it becomes a run with the same id) unless it is cancelled or refused."""
    deadline = time.monotonic() + settings.LOOPGATE_LANGGRAPH_WAIT_SECONDS
    active = (Execution.Status.QUEUED, Execution.Status.RUNNING)
    run_id = run.pk
    current: Run | QueuedRun | None = run
    next_nudge = time.monotonic() + QUEUE_NUDGE_SECONDS
    # Woken by the run's status changes (agent_api/wakeup.py; a run becomes an execution with
    # its own id), and polling all the same in case a wake-up is lost.
    with wakeup.watching(run_id) as changed:
        while time.monotonic() < deadline:
            changed.clear()
            current = selectors.run_or_queued(run_id)
            if current is None:
                break
            if isinstance(current, QueuedRun):
                if current.cancelled or current.error:
                    break
                if time.monotonic() >= next_nudge:  # its turn may have come while no listener was there to see it
                    services.runs_start_queued(thread_id=current.thread_id)
                    next_nudge = time.monotonic() + QUEUE_NUDGE_SECONDS
            elif current.execution.status not in active:
                break
            changed.wait(WAIT_POLL_SECONDS)
    return selectors.run_output(current or run)


def _location(run: Run | QueuedRun) -> dict[str, str]:
    return {"Content-Location": f"/threads/{run.thread_id}/runs/{run.pk}"}


class RunCreateApi(LangGraphApi):
    def post(self, request: Request, thread_id: str | None = None) -> Response:
        run = _start(request, thread_id)
        return Response(selectors.run_body(run), headers=_location(run))


class RunWaitApi(LangGraphApi):
    def post(self, request: Request, thread_id: str | None = None) -> Response:
        run = _start(request, thread_id)
        return Response(_wait(run), headers=_location(run))


class RunListApi(LangGraphApi):
    def post(self, request: Request, thread_id: str) -> Response:
        run = _start(request, thread_id)
        return Response(selectors.run_body(run), headers=_location(run))

    def get(self, request: Request, thread_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        runs = selectors.run_list(thread=thread)
        status = request.query_params.get("status")
        if status:
            if status not in RUN_STATUSES:
                raise ValidationError({"status": f"Choose one of {', '.join(RUN_STATUSES)}."})
            runs = runs.filter(execution__status__in=RUN_STATUSES[status])
        limit = _int(request.query_params.get("limit"), "limit", 10, high=1000)
        offset = _int(request.query_params.get("offset"), "offset", 0, high=10**9)
        items: list[Any] = list(runs[:offset + limit])
        if not status or status in ("pending", "interrupted", "error"):
            queued = [q for q in selectors.queued_list(thread=thread)
                      if not status or shapes.queued_run(q)["status"] == status]
            items = sorted(items + queued, key=lambda item: item.created_at, reverse=True)
        return Response([selectors.run_body(item) for item in items[offset:offset + limit]])


class RunDetailApi(LangGraphApi):
    def get(self, request: Request, thread_id: str, run_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        return Response(selectors.run_body(selectors.run_get_for_user(user=request.user, thread=thread, run_id=run_id)))

    def delete(self, request: Request, thread_id: str, run_id: str) -> Response:
        raise NotSupported("Deleting runs is not served: a run is an execution, kept in the executions list and "
                           "the audit log. Cancel it instead.")


class RunJoinApi(LangGraphApi):
    def get(self, request: Request, thread_id: str, run_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        return Response(_wait(selectors.run_get_for_user(user=request.user, thread=thread, run_id=run_id)))


class RunCancelApi(LangGraphApi):
    def post(self, request: Request, thread_id: str, run_id: str) -> Response:
        thread = selectors.thread_get_for_user(user=request.user, thread_id=thread_id)
        run = selectors.run_get_for_user(user=request.user, thread=thread, run_id=run_id)
        if isinstance(run, QueuedRun):
            run = services.queued_run_cancel(user=request.user, queued=run)
        else:
            services.run_cancel(user=request.user, run=run, action=request.query_params.get("action") or "interrupt")
        if request.query_params.get("wait") in ("1", "true", "True", "yes"):
            return Response(_wait(run), headers=_location(run))
        return Response(status=202)


class RunCancelManyApi(LangGraphApi):
    def post(self, request: Request) -> Response:
        data = _body(request)
        action = request.query_params.get("action") or "interrupt"
        status = data.get("status")
        if status:
            if data.get("thread_id") or data.get("run_ids"):
                raise ValidationError({"status": "With a status, leave out thread_id and run_ids."})
            wanted = {"pending": [Execution.Status.QUEUED], "running": [Execution.Status.RUNNING],
                      "all": [Execution.Status.QUEUED, Execution.Status.RUNNING, Execution.Status.INTERRUPTED]}
            if status not in wanted:
                raise ValidationError({"status": "Choose pending, running or all."})
            runs = Run.objects.filter(execution__status__in=wanted[status])
            queued = QueuedRun.objects.filter(cancelled=False, error="") if status != "running" else QueuedRun.objects.none()
        else:
            thread = selectors.thread_get_for_user(user=request.user, thread_id=data.get("thread_id"))
            ids = [i for i in data.get("run_ids") or [] if _is_uuid(i)]
            runs = Run.objects.filter(thread=thread, execution_id__in=ids)
            queued = QueuedRun.objects.filter(thread=thread, id__in=ids, cancelled=False, error="")
        for waiting in queued:
            services.queued_run_cancel(user=request.user, queued=waiting)
        for run in runs.select_related("execution"):
            if not run.execution.is_finished:
                services.run_cancel(user=request.user, run=run, action=action)
        return Response(status=204)


class NotServedApi(LangGraphApi):
    """Streaming, the store and crons: issue 13 and later. Answers 501 naming what is missing."""

    what = "This path"

    def _refuse(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotImplementedYet(f"{self.what} is not served by Loopgate yet: {request.method} {request.path}. "
                                "Use runs.wait, runs.create with runs.join, or threads.get_state instead.")

    get = post = put = patch = delete = _refuse


def not_served(what: str) -> Any:
    return type("NotServed", (NotServedApi,), {"what": what}).as_view()


class NotSupportedApi(LangGraphApi):
    what = "This path"

    def _refuse(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotSupported(f"{self.what} is not served by Loopgate yet ({request.method} {request.path}).")

    get = post = put = patch = delete = _refuse


def not_supported(what: str) -> Any:
    return type("NotSupported", (NotSupportedApi,), {"what": what}).as_view()
