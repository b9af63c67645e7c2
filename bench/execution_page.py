"""How long the execution page of an execution with 1,000 steps takes to answer.

Builds, in a throw-away test database (Django's own, created and dropped here), an execution
with 1,000 steps, each with an update, a state diff and a node span with an LLM call under it,
and the final state such a run ends with (a few hundred messages, the notes, the report), which
the page renders; then times GET /executions/<id>/ through Django's test client, the first page
of the timeline (what a browser loads) and one opened step. Prints the timings; asserts nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/execution_page.py
    .venv/bin/python bench/execution_page.py            # embedded SQLite
    .venv/bin/python bench/execution_page.py --steps 5000 --runs 20 --messages 1000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestrator.settings")


def final_state(steps: int, messages: int) -> dict:
    """The state a long research run ends with: its conversation, notes and report, as JSON."""
    sentence = "The checkpointer writes every channel version once and the runner resumes from the newest. "
    conversation = []
    for i in range(messages):
        kind = ("human", "ai", "tool", "ai")[i % 4]
        message: dict = {"type": kind, "id": str(uuid.UUID(int=i + 1)), "content": f"[{i}] " + sentence * (2 + i % 5)}
        if kind == "ai" and i % 8 == 1:
            message.update(content="", tool_calls=[{"name": "search", "id": f"call_{i}", "type": "tool_call",
                                                    "args": {"query": f"durable execution, aspect {i}"}}])
        if kind == "ai":
            message["usage_metadata"] = {"input_tokens": 300 + i, "output_tokens": 100, "total_tokens": 400 + i}
            message["response_metadata"] = {"model_name": "gpt-4o-mini", "finish_reason": "stop"}
        if kind == "tool":
            message.update(name="search", tool_call_id=f"call_{i - 1}")
        conversation.append(message)
    return {
        "task": "Compare durable execution options for long-running agents",
        "messages": conversation,
        "notes": [f"[{i + 1}] " + sentence * 2 for i in range(min(steps, 120))],
        "iterations": steps // 2,
        "report": "# Durable execution\n\n" + "\n\n".join(sentence * 6 for _ in range(20)),
    }


def build(steps: int, messages: int):  # type: ignore[no-untyped-def]
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    from orchestrator import roles
    from orchestrator.models import Execution
    from traces.models import Span, Step

    user = User.objects.create_user("bench", password="bench")
    user.groups.add(Group.objects.get_or_create(name=roles.OPERATORS)[0])
    start = timezone.now() - datetime.timedelta(seconds=steps)
    from orchestrator.models.execution import owning_status

    with owning_status():  # a finished execution as fixture data, not a run: written as the services would
        execution = Execution.objects.create(
            graph_name="deep_research", graph_version="bench", status=Execution.Status.SUCCEEDED, created_by=user,
            input={"task": "bench"}, state=final_state(steps, messages), tokens_used=steps * 400, token_budget=steps * 1000,
            step_count=steps, started_at=start, finished_at=timezone.now(),
        )
    message = {"type": "ai", "content": "A research note of a few sentences. " * 8, "name": "search",
               "usage_metadata": {"input_tokens": 300, "output_tokens": 100}}
    rows, spans = [], []
    for i in range(steps):
        t0 = start + datetime.timedelta(seconds=i)
        rows.append(Step(
            execution=execution, step=i, nodes=["search" if i % 2 else "supervisor"],
            checkpoint_id=str(uuid.uuid4()), update={"search": {"messages": [message], "notes": [f"note {i}"]}},
            diff=[{"op": "add", "path": f"messages[{i}]", "after": message},
                  {"op": "add", "path": f"notes[{i}]", "after": f"note {i}"}],
            tokens=400, bytes_written=2_000 + 40 * i, started_at=t0, finished_at=t0 + datetime.timedelta(milliseconds=800),
        ))
        node_id = uuid.uuid4()
        spans.append(Span(id=node_id, execution=execution, kind=Span.Kind.NODE, name="search", step=i, task_id=str(i),
                          output={"messages": [message]}, started_at=t0,
                          ended_at=t0 + datetime.timedelta(milliseconds=800)))
        spans.append(Span(execution=execution, parent_id=node_id, kind=Span.Kind.LLM, name="gpt-4o-mini",
                          model="gpt-4o-mini", step=i, task_id=str(i), input=[message], output=message,
                          input_tokens=300, output_tokens=100, started_at=t0 + datetime.timedelta(milliseconds=5),
                          ended_at=t0 + datetime.timedelta(milliseconds=700)))
    Step.objects.bulk_create(rows, batch_size=500)
    Span.objects.bulk_create(spans, batch_size=500)
    return execution, user


def timed(client, url: str, runs: int, **headers: str) -> tuple[list[float], int, int]:  # type: ignore[no-untyped-def]
    times, size, status = [], 0, 0
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(url, **headers)
        times.append((time.perf_counter() - began) * 1000)
        size, status = len(response.content), response.status_code
    return times, size, status


def queries(client, url: str, **headers: str) -> int:  # type: ignore[no-untyped-def]
    """Statements one request makes (untimed: counting makes Django keep every query)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url, **headers)
    return len(captured)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=400, help="messages in the final state")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment, teardown_test_environment
    from django.urls import reverse

    from traces.models import Step

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        began = time.perf_counter()
        execution, user = build(args.steps, args.messages)
        state_kb = len(json.dumps(execution.state)) / 1024
        print(f"built an execution with {args.steps:,} steps, {2 * args.steps:,} spans and a final state of "
              f"{args.messages:,} messages ({state_kb:.0f} KB of JSON) on {connection.vendor} "
              f"in {time.perf_counter() - began:.1f} s")
        client = Client()
        client.force_login(user)
        page = reverse("traces:execution", args=[execution.id])
        step = Step.objects.filter(execution=execution).order_by("id")[args.steps // 2]
        for label, url, headers in (
            ("execution page", page, {}),
            ("next timeline page (htmx)", reverse("traces:steps", args=[execution.id]) + f"?after={step.id}",
             {"HTTP_HX_REQUEST": "true"}),
            ("one opened step (htmx)", reverse("traces:step", args=[execution.id, step.id]), {"HTTP_HX_REQUEST": "true"}),
            ("steps API, first page", f"/api/v1/executions/{execution.id}/steps/", {}),
        ):
            timed(client, url, 1, **headers)  # warm: templates compiled, graph registry loaded
            times, size, status = timed(client, url, args.runs, **headers)
            print(f"{label:28} HTTP {status}  median {statistics.median(times):7.1f} ms  "
                  f"max {max(times):7.1f} ms  ({size / 1024:.0f} KB, {args.runs} runs, "
                  f"{queries(client, url, **headers)} statements)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        teardown_test_environment()


if __name__ == "__main__":
    main()
