"""One journey through LangGraph's Python SDK, run against Loopgate and (in the comparison
test) against ``langgraph dev`` serving the same graphs. It returns what a client sees,
without ids and timestamps, so the two servers' answers can be compared as they are."""

from __future__ import annotations

import time
from typing import Any, Callable

EDIT = {"type": "edit", "args": {"draft": "Cats, revised"}}


def _until(check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def journey(operator: Any, reviewer: Any) -> dict[str, Any]:
    """``operator`` starts, forks and cancels; ``reviewer`` resumes (one client may be both)."""
    seen: dict[str, Any] = {}
    assistant = operator.assistants.search(graph_id="lg_review")[0]
    seen["assistant"] = {k: assistant[k] for k in ("assistant_id", "graph_id", "name", "version", "metadata")}
    seen["schemas"] = sorted(operator.assistants.get_schemas(assistant["assistant_id"])["state_schema"]["properties"])

    thread = operator.threads.create(metadata={"team": "docs"})
    tid = thread["thread_id"]
    seen["new_thread"] = {k: thread[k] for k in ("metadata", "status", "values")}

    # runs.wait stops at the interrupt: the values, with __interrupt__.
    first = operator.runs.wait(tid, assistant["assistant_id"], input={"topic": "cats"})
    seen["interrupted_values"] = {k: v for k, v in first.items() if k != "__interrupt__"}
    seen["interrupt_value"] = first["__interrupt__"][0]["value"]
    seen["thread_interrupted"] = operator.threads.get(tid)["status"]
    state = operator.threads.get_state(tid)
    seen["interrupted_state"] = {"next": state["next"], "task": state["tasks"][0]["name"],
                                 "task_interrupts": [i["value"]["action"] for i in state["tasks"][0]["interrupts"]],
                                 "interrupts": [i["value"]["action"] for i in state["interrupts"]]}

    # Resume with an edit through command.
    seen["resumed"] = reviewer.runs.wait(tid, assistant["assistant_id"], command={"resume": EDIT})
    seen["thread_after_resume"] = operator.threads.get(tid)["status"]

    history = operator.threads.get_history(tid, limit=20)
    seen["history"] = [(h["next"], h["metadata"]["source"], h["metadata"]["step"]) for h in history]
    assert operator.threads.get_state(tid)["values"] == seen["resumed"]

    # update_state on an old checkpoint, as a node that asks nobody, and a run from there.
    before_review = next(h for h in history if h["next"] == ["review"])
    at = operator.threads.get_state(tid, checkpoint_id=before_review["checkpoint"]["checkpoint_id"])
    seen["old_checkpoint_values"] = at["values"]
    written = operator.threads.update_state(tid, {"draft": "Dogs instead"}, as_node="write",
                                            checkpoint_id=before_review["checkpoint"]["checkpoint_id"])
    updated = operator.threads.get_state(tid)
    assert updated["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
    seen["updated_state"] = {"values": updated["values"], "next": updated["next"],
                             "source": updated["metadata"]["source"]}
    again = operator.runs.wait(tid, assistant["assistant_id"], input=None)
    seen["run_from_update"] = {k: v for k, v in again.items() if k != "__interrupt__"}
    seen["run_from_update_asks"] = again["__interrupt__"][0]["value"]["draft"]
    seen["approved"] = reviewer.runs.wait(tid, assistant["assistant_id"], command={"resume": {"type": "approve"}})

    # threads.copy: the same state in a new thread.
    copy = operator.threads.copy(tid)
    assert copy["thread_id"] != tid
    seen["copy_values"] = operator.threads.get_state(copy["thread_id"])["values"]
    seen["copy_metadata"] = copy["metadata"]

    # A stateless run.
    seen["stateless"] = operator.runs.wait(None, "lg_echo", input={"text": "hi"})

    # A background run: create, join, get, list.
    other = operator.threads.create()["thread_id"]
    run = operator.runs.create(other, "lg_echo", input={"text": "a"})
    seen["background_created"] = {k: run[k] for k in ("status", "multitask_strategy")}
    seen["joined"] = operator.runs.join(other, run["run_id"])
    got = operator.runs.get(other, run["run_id"])
    assert got["thread_id"] == other
    seen["background_done"] = {k: got[k] for k in ("status", "assistant_id")} | {
        "metadata": {k: got["metadata"][k] for k in ("graph_id", "assistant_id")}}
    seen["background_list"] = [(r["run_id"] == run["run_id"], r["status"]) for r in operator.runs.list(other)]
    seen["second_run_on_thread"] = operator.runs.wait(other, "lg_echo", input={"text": "b"})
    seen["command_update"] = operator.runs.wait(other, "lg_echo", command={"update": {"text": "zzz"}})
    first_input = [h for h in operator.threads.get_history(other, limit=50) if h["metadata"]["source"] == "input"][-1]
    seen["fork_with_input"] = operator.runs.wait(other, "lg_echo", input={"text": "fork"},
                                                 checkpoint_id=first_input["checkpoint"]["checkpoint_id"])
    seen["replay"] = operator.runs.wait(other, "lg_echo", input=None,
                                        checkpoint_id=first_input["checkpoint"]["checkpoint_id"])

    # Cancel a running run.
    slow = operator.threads.create()["thread_id"]
    long_run = operator.runs.create(slow, "lg_slow", input={"limit": 200})
    _until(lambda: operator.runs.get(slow, long_run["run_id"])["status"] == "running", "the slow run to run")
    operator.runs.cancel(slow, long_run["run_id"])
    seen["cancelled"] = _until(lambda: (s := operator.runs.get(slow, long_run["run_id"])["status"]) != "running" and s,
                               "the cancel to land")
    seen["cancelled_thread"] = _until(lambda: (s := operator.threads.get(slow)["status"]) != "busy" and s,
                                      "the thread to settle after the cancel")

    found = operator.threads.search(metadata={"team": "docs"}, limit=100)
    seen["search_finds"] = sorted(t["thread_id"] == tid for t in found)
    seen["search_by_status"] = any(t["thread_id"] == slow for t in operator.threads.search(status="interrupted"))
    seen["ids"] = {"thread": tid, "run": run["run_id"], "other": other, "slow": slow, "long_run": long_run["run_id"]}
    return seen


def _names(name: str) -> str:
    """``updates|inner:<task id>`` → ``updates|inner``: task ids differ from server to server."""
    head, _, namespace = name.partition("|")
    return f"{head}|{'|'.join(part.split(':')[0] for part in namespace.split('|'))}" if namespace else head


def _keys(data: Any) -> Any:
    return sorted(data) if isinstance(data, dict) else type(data).__name__


def _no_interrupt_ids(value: Any) -> Any:
    """Interrupt ids hash where the task ran: each server has its own."""
    if isinstance(value, dict) and isinstance(value.get("__interrupt__"), list):
        return {**value, "__interrupt__": [{k: v for k, v in i.items() if k != "id"} for i in value["__interrupt__"]]}
    return value


def _parts(parts: Any, data: Callable[[str, Any], Any] = lambda name, value: value) -> list[tuple[str, Any]]:
    out = []
    for part in parts:
        value = _keys(part.data) if part.event == "metadata" else data(part.event, _no_interrupt_ids(part.data))
        out.append((_names(part.event), value))
    return out


def _message(name: str, value: Any) -> Any:
    if name == "messages/metadata":
        return list(value)  # the message ids; the metadata names each server's own keys
    if name in ("messages/partial", "messages/complete"):
        return [{k: v for k, v in m.items()} for m in value]
    if name == "messages":
        chunk, metadata = value
        return [chunk["content"], chunk["type"], metadata["langgraph_node"]]
    return value


def _shapes(name: str, value: Any) -> Any:
    if name == "tasks":
        return [value["name"], sorted(value)]
    if name == "checkpoints":
        return [sorted(value), value["metadata"]["step"], value["next"]]
    if name == "debug":
        return [value["type"], value["step"], sorted(value["payload"])]
    if name == "events":
        return [value["event"], value["data"]["chunk"]["content"]]
    return value


def stream_journey(operator: Any, reviewer: Any) -> dict[str, Any]:
    """What ``runs.stream`` yields, mode by mode, without ids and timestamps."""
    seen: dict[str, Any] = {}
    thread = operator.threads.create()["thread_id"]
    seen["values_updates"] = _parts(operator.runs.stream(thread, "lg_echo", input={"text": "hi"},
                                                         stream_mode=["values", "updates"]))
    seen["second_run_values"] = _parts(operator.runs.stream(thread, "lg_echo", input={"text": "again"}))
    review = operator.threads.create()["thread_id"]
    seen["until_interrupt"] = _parts(operator.runs.stream(review, "lg_review", input={"topic": "owls"},
                                                          stream_mode=["updates", "values"]))
    seen["resumed"] = _parts(reviewer.runs.stream(review, "lg_review", command={"resume": {"type": "approve"}},
                                                  stream_mode=["updates", "values"]))
    chat = {"messages": [{"role": "user", "content": "yo", "id": "question-1"}]}
    seen["messages"] = _parts(operator.runs.stream(None, "lg_chat", input=chat, stream_mode=["messages", "custom"]),
                              _message)
    seen["messages_tuple"] = _parts(operator.runs.stream(None, "lg_chat", input=chat, stream_mode="messages-tuple"),
                                    _message)
    seen["tasks_checkpoints"] = _parts(operator.runs.stream(thread, "lg_echo", input={"text": "t"},
                                                            stream_mode=["tasks", "checkpoints"]), _shapes)
    seen["debug"] = _parts(operator.runs.stream(thread, "lg_echo", input={"text": "d"}, stream_mode="debug"), _shapes)
    seen["subgraphs"] = _parts(operator.runs.stream(None, "lg_nested", input={"text": "n"}, stream_mode="updates",
                                                    stream_subgraphs=True))
    seen["error"] = _parts(operator.runs.stream(None, "lg_echo", input={"text": "fail"}, stream_mode="values"))
    return seen
