"""LangGraph's Agent Server paths, under /langgraph/ (orchestrator/urls.py)."""

from __future__ import annotations

from django.urls import path, re_path

from agent_api import api, store, streaming

T = "threads/<str:thread_id>"
R = "threads/<str:thread_id>/runs/<str:run_id>"

urlpatterns = [
    path("assistants", api.AssistantCreateApi.as_view()),
    path("assistants/search", api.AssistantSearchApi.as_view()),
    path("assistants/count", api.AssistantCountApi.as_view()),
    path("assistants/<str:assistant_id>", api.AssistantDetailApi.as_view()),
    path("assistants/<str:assistant_id>/graph", api.AssistantGraphApi.as_view()),
    path("assistants/<str:assistant_id>/schemas", api.AssistantSchemasApi.as_view()),
    path("assistants/<str:assistant_id>/subgraphs", api.AssistantSubgraphsApi.as_view()),
    path("assistants/<str:assistant_id>/subgraphs/<path:namespace>", api.AssistantSubgraphsApi.as_view()),
    path("assistants/<str:assistant_id>/versions", api.AssistantVersionsApi.as_view()),
    path("assistants/<str:assistant_id>/latest", api.AssistantLatestApi.as_view()),
    path("threads", api.ThreadCreateApi.as_view()),
    path("threads/search", api.ThreadSearchApi.as_view()),
    path("threads/count", api.ThreadCountApi.as_view()),
    path("threads/prune", api.not_supported("Pruning threads")),
    path(T, api.ThreadDetailApi.as_view()),
    path(f"{T}/copy", api.ThreadCopyApi.as_view()),
    path(f"{T}/state", api.ThreadStateApi.as_view()),
    path(f"{T}/state/checkpoint", api.ThreadStateAtApi.as_view()),
    path(f"{T}/state/<str:checkpoint_id>", api.ThreadStateApi.as_view()),
    path(f"{T}/history", api.ThreadHistoryApi.as_view()),
    path(f"{T}/stream", api.not_served("Streaming a thread (issue 13)")),
    path(f"{T}/runs", api.RunListApi.as_view()),
    path(f"{T}/runs/wait", api.RunWaitApi.as_view()),
    path(f"{T}/runs/stream", streaming.run_stream),
    path(f"{T}/runs/crons", api.not_served("Crons")),
    path(R, api.RunDetailApi.as_view()),
    path(f"{R}/join", api.RunJoinApi.as_view()),
    path(f"{R}/cancel", api.RunCancelApi.as_view()),
    path(f"{R}/stream", streaming.join_stream),
    path("runs", api.RunCreateApi.as_view()),
    path("runs/wait", api.RunWaitApi.as_view()),
    path("runs/stream", streaming.run_stream),
    path("runs/batch", api.not_supported("Batches of runs")),
    path("runs/cancel", api.RunCancelManyApi.as_view()),
    re_path(r"^runs/crons", api.not_served("Crons")),
    path("store/items", store.StoreItemApi.as_view()),
    path("store/items/search", store.StoreSearchApi.as_view()),
    path("store/namespaces", store.StoreNamespacesApi.as_view()),
]
