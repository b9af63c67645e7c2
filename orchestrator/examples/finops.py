"""Autonomous FinOps: find the idle dev cluster behind a cost spike and shut it down — with the owner's approval.

Monitor finds a spike in the account's daily cloud costs; Diagnostic finds the
idle dev cluster behind it (name, owner, region, monthly cost); Communication
drafts a message to the owner and asks for approval (an interrupt that becomes
an Approval in Loopgate, with the deadline ``approval_timeout_seconds``, default
two hours); Action shuts the cluster down only once approved. If the owner does
not answer in time, the Escalation edge notifies their manager and the run ends
with nothing shut down. The costs, the cluster inventory and the shutdown are
simulated: a small built-in dataset, and the "shutdown" is a record in
``actions_taken``, never a call to a cloud.

Input: ``account`` ("acme-prod" has a spike, "acme-staging" has none) and
``approval_timeout_seconds``.

The approval's resume value may be:

- approve: ``{"type": "approve"}``, ``{"type": "accept"}``, ``{"decision": "approve"}``
  (also "approved" / "accepted", the bare strings, or ``true``);
- edit: ``{"type": "edit", "args": {"cluster", "snapshot_first", "grace_period_minutes"}}``
  approves the shutdown done the reviewer's way (the request's ``args_schema``
  keeps the cluster fixed);
- timeout: ``{"type": "timeout"}`` (also "timed_out" / "expired") → escalate;
- reject: ``{"type": "reject", ...}`` (also "decline", "deny", "ignore", ``false``),
  and any other answer — "respond" with a message, or something not
  understood — ends the run without shutting anything down.

One-element lists (Agent Inbox responses) and ``{"decisions": [one]}``
(HumanInTheLoopMiddleware) are unwrapped first. ``message``, ``comment`` or
``reason`` and ``by`` / ``user`` in the answer are recorded with the decision.
"""

# No ``from __future__ import annotations`` here: LangGraph and pydantic read the
# state classes' annotations at runtime (reducers in ``Annotated``), and plain
# annotations keep that independent of how they resolve module globals.

import operator
from typing import Annotated, Any

from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import interrupt
from typing_extensions import Required, TypedDict

from orchestrator.llm import get_chat_model

DEFAULT_APPROVAL_TIMEOUT_SECONDS = 2 * 60 * 60  # the seed's "if the human doesn't respond in 2 hours"
SPIKE_THRESHOLD = 0.25  # the last days cost 25 % more than the baseline days
BASELINE_DAYS, RECENT_DAYS = 7, 3
IDLE_CPU_PCT, IDLE_DAYS = 5.0, 3

EXAMPLE_INPUT = {"account": "acme-prod", "approval_timeout_seconds": DEFAULT_APPROVAL_TIMEOUT_SECONDS}

# --- the simulated cloud --------------------------------------------------------------------

# Daily cost in USD per service, oldest day first. On acme-prod a dev EKS
# cluster started on 2026-03-11 for a load test and was never stopped (+$610/day).
COST_DATES = [f"2026-03-{day:02d}" for day in range(1, 15)]
DAILY_COSTS_USD: dict[str, dict[str, list[int]]] = {
    "acme-prod": {
        "EC2": [1210, 1195, 1230, 1202, 1188, 1215, 1224, 1209, 1198, 1220, 1231, 1226, 1219, 1228],
        "EKS": [302, 298, 305, 300, 297, 303, 301, 299, 304, 302, 908, 912, 910, 911],
        "RDS": [402, 398, 400, 401, 399, 403, 400, 402, 398, 401, 400, 399, 402, 401],
        "S3": [151, 150, 152, 149, 150, 151, 153, 152, 150, 151, 152, 151, 150, 152],
    },
    "acme-staging": {
        "EC2": [310, 305, 312, 308, 306, 311, 309, 307, 310, 312, 308, 306, 309, 311],
        "EKS": [120, 118, 121, 119, 120, 122, 118, 119, 121, 120, 119, 122, 120, 118],
        "S3": [40, 41, 40, 39, 40, 41, 40, 40, 39, 41, 40, 40, 41, 40],
    },
}

CLUSTERS: dict[str, list[dict[str, Any]]] = {
    "acme-prod": [
        {"name": "prod-api-1", "env": "prod", "service": "EKS", "owner": "platform-team", "manager": "lee.chen",
         "region": "us-east-1", "monthly_cost_usd": 9000, "avg_cpu_pct": 61.0, "idle_days": 0,
         "last_job": "2026-03-14"},
        {"name": "dev-analytics-2", "env": "dev", "service": "EKS", "owner": "maria.lopez", "manager": "dana.kim",
         "region": "eu-west-1", "monthly_cost_usd": 18300, "avg_cpu_pct": 1.2, "idle_days": 4,
         "last_job": "2026-03-11"},
        {"name": "dev-sandbox-1", "env": "dev", "service": "EKS", "owner": "sam.okafor", "manager": "dana.kim",
         "region": "us-east-1", "monthly_cost_usd": 950, "avg_cpu_pct": 23.5, "idle_days": 0,
         "last_job": "2026-03-14"},
        {"name": "dev-ml-3", "env": "dev", "service": "EKS", "owner": "ravi.patel", "manager": "lee.chen",
         "region": "us-west-2", "monthly_cost_usd": 310, "avg_cpu_pct": 0.8, "idle_days": 21,
         "last_job": "2026-02-21"},
    ],
    "acme-staging": [
        {"name": "staging-web-1", "env": "staging", "service": "EKS", "owner": "web-team", "manager": "lee.chen",
         "region": "us-east-1", "monthly_cost_usd": 3600, "avg_cpu_pct": 34.0, "idle_days": 0,
         "last_job": "2026-03-14"},
    ],
}

COMMUNICATION_PROMPT = (
    "You are the communication agent of a FinOps team. Write one short, polite direct message to the owner "
    "of an idle cloud cluster: say what it is, why it looks idle and what it costs, and ask for approval to "
    "shut it down. Mention the deadline and who will be asked if there is no answer. Plain text, no greeting "
    "line of its own, under 80 words."
)


# --- state ----------------------------------------------------------------------------------


class FinOpsInput(TypedDict, total=False):
    account: Required[str]
    approval_timeout_seconds: int


class FinOpsState(TypedDict, total=False):
    account: str
    approval_timeout_seconds: int
    spike: dict[str, Any]
    cluster: dict[str, Any]
    messages: Annotated[list[AnyMessage], add_messages]
    approval_request: dict[str, Any]
    decision: dict[str, Any]
    # Reducers append, so every action and notification stays on record.
    actions_taken: Annotated[list[dict[str, Any]], operator.add]
    notifications: Annotated[list[dict[str, Any]], operator.add]
    outcome: str  # no_data | no_spike | no_idle_cluster | shut_down | declined | escalated
    summary: str


def timeout_of(state: FinOpsState) -> int:
    value = state.get("approval_timeout_seconds")
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return DEFAULT_APPROVAL_TIMEOUT_SECONDS
    return value


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


# --- nodes ----------------------------------------------------------------------------------


def monitor(state: FinOpsState) -> dict[str, Any]:
    """Compare the last days' spend with the days before; a rise past the threshold is a spike."""
    account = state["account"]
    costs = DAILY_COSTS_USD.get(account)
    if costs is None:
        known = ", ".join(sorted(DAILY_COSTS_USD))
        return {"outcome": "no_data", "summary": f"No cost data for account {account!r} (known: {known})."}

    def daily(days: slice) -> dict[str, float]:
        return {service: sum(values[days]) / len(values[days]) for service, values in costs.items()}

    baseline, recent = daily(slice(0, BASELINE_DAYS)), daily(slice(-RECENT_DAYS, None))
    baseline_total, recent_total = sum(baseline.values()), sum(recent.values())
    increase = (recent_total - baseline_total) / baseline_total
    if increase <= SPIKE_THRESHOLD:
        return {
            "outcome": "no_spike",
            "summary": f"No cost spike on {account}: ${recent_total:,.0f}/day against ${baseline_total:,.0f}/day "
            f"({increase:+.0%}).",
        }
    top = max(costs, key=lambda service: (recent[service] - baseline[service], service))
    return {
        "spike": {
            "account": account,
            "baseline_daily_usd": round(baseline_total, 2),
            "recent_daily_usd": round(recent_total, 2),
            "increase_pct": round(increase * 100, 1),
            "service": top,
            "service_increase_daily_usd": round(recent[top] - baseline[top], 2),
            "window": f"{COST_DATES[-RECENT_DAYS]} to {COST_DATES[-1]} against {COST_DATES[0]} to "
            f"{COST_DATES[BASELINE_DAYS - 1]}",
        }
    }


def route_after_monitor(state: FinOpsState) -> str:
    return "diagnose" if state.get("spike") else END


def diagnose(state: FinOpsState) -> dict[str, Any]:
    """The most expensive idle dev cluster of the spiking service."""
    spike = state["spike"]
    idle = [
        cluster
        for cluster in CLUSTERS.get(state["account"], [])
        if cluster["env"] == "dev"
        and cluster["service"] == spike["service"]
        and cluster["avg_cpu_pct"] < IDLE_CPU_PCT
        and cluster["idle_days"] >= IDLE_DAYS
    ]
    if not idle:
        return {
            "outcome": "no_idle_cluster",
            "summary": f"{spike['service']} costs rose {spike['increase_pct']}% on {state['account']}, but no idle "
            "dev cluster explains it; a person should look.",
        }
    cluster = max(idle, key=lambda c: (c["monthly_cost_usd"], c["name"]))
    return {"cluster": dict(cluster)}


def route_after_diagnose(state: FinOpsState) -> str:
    return "communicate" if state.get("cluster") else END


def communicate(state: FinOpsState) -> dict[str, Any]:
    """Draft the approval request to the owner.

    A node of its own, before the interrupt: a node that interrupts runs again
    from its start on resume, and the model must not be called (and paid) twice.
    """
    cluster, timeout = state["cluster"], timeout_of(state)
    facts = {
        "owner": cluster["owner"],
        "cluster": cluster["name"],
        "region": cluster["region"],
        "account": state["account"],
        "monthly_cost_usd": f"{cluster['monthly_cost_usd']:,}",
        "idle_days": cluster["idle_days"],
        "avg_cpu_pct": cluster["avg_cpu_pct"],
        "deadline": _duration(timeout),
        "manager": cluster["manager"],
    }
    prompt = HumanMessage("\n".join(f"{key}: {value}" for key, value in facts.items()))
    answer = get_chat_model("communication").invoke([SystemMessage(COMMUNICATION_PROMPT), prompt])
    text = answer.content if isinstance(answer.content, str) else answer.text
    description = text.strip() or (
        f"Shut down the idle dev cluster {cluster['name']} ({cluster['region']}, "
        f"${cluster['monthly_cost_usd']:,}/month)?"
    )
    request = {
        "action": "shutdown_cluster",
        "cluster": cluster["name"],
        "account": state["account"],
        "region": cluster["region"],
        "owner": cluster["owner"],
        "monthly_cost_usd": cluster["monthly_cost_usd"],
        "snapshot_first": True,
        "grace_period_minutes": 30,
        "description": description,
        "timeout_seconds": timeout,
        # Stopping a cluster is not undone by a click: one key must not decide it (the inbox and the
        # approval page ask for "a" twice, approvals/models.py is_high_stakes).
        "high_stakes": True,
        # The reviewer may approve as asked, or edit how the shutdown is done.
        "allowed_decisions": ["approve", "edit", "reject", "respond"],
        "args_schema": {
            "type": "object",
            "properties": {
                "cluster": {"const": cluster["name"], "description": "The cluster (fixed)."},
                "snapshot_first": {"type": "boolean", "description": "Snapshot its volumes before stopping."},
                "grace_period_minutes": {"type": "integer", "minimum": 0, "maximum": 1440,
                                         "description": "Minutes to wait before stopping, after telling users."},
            },
            "required": ["cluster", "snapshot_first", "grace_period_minutes"],
        },
    }
    return {"messages": [prompt, answer.model_copy(update={"name": "communication"})], "approval_request": request}


APPROVE_WORDS = frozenset({"approve", "approved", "accept", "accepted"})
TIMEOUT_WORDS = frozenset({"timeout", "timed_out", "expired"})
REJECT_WORDS = frozenset({"reject", "rejected", "decline", "declined", "deny", "denied", "ignore"})


def read_answer(answer: Any) -> dict[str, Any]:
    """Turn the resume value into ``{"outcome": approved | timed_out | rejected, ...}``.

    Anything not plainly an approval or a timeout counts as a rejection: an
    unclear answer must never shut a cluster down.
    """
    if isinstance(answer, list) and len(answer) == 1:
        answer = answer[0]
    if isinstance(answer, dict) and isinstance(answer.get("decisions"), list) and len(answer["decisions"]) == 1:
        answer = answer["decisions"][0]
    if isinstance(answer, bool):
        word = "approve" if answer else "reject"
    elif isinstance(answer, str):
        word = answer
    elif isinstance(answer, dict):
        word = str(answer.get("type") or answer.get("decision") or "")
    else:
        word = ""
    word = word.strip().lower()
    decision: dict[str, Any] = {"answer": answer}
    if word in APPROVE_WORDS:
        decision["outcome"] = "approved"
    elif word == "edit" and isinstance(answer, dict) and isinstance(answer.get("args"), dict):
        # Approved, with the shutdown's parameters as the reviewer edited them.
        decision["outcome"] = "approved"
        decision["edited"] = answer["args"]
    elif word in TIMEOUT_WORDS:
        decision["outcome"] = "timed_out"
    else:
        decision["outcome"] = "rejected"
        if word not in REJECT_WORDS:
            decision["note"] = f"answer {word or answer!r} is not an approval; nothing was shut down"
    if isinstance(answer, dict):
        for key in ("message", "comment", "reason"):
            if isinstance(answer.get(key), str) and answer[key].strip():
                decision["comment"] = answer[key].strip()
                break
        for key in ("by", "user", "decided_by", "reviewer"):
            if answer.get(key):
                decision["by"] = str(answer[key])
                break
    return decision


def await_approval(state: FinOpsState) -> dict[str, Any]:
    """Ask the owner and wait. Only the interrupt lives here, so re-running on resume is free."""
    answer = interrupt(state["approval_request"])
    decision = read_answer(answer)
    edited = decision.get("edited")
    if edited is not None and edited.get("cluster") != state["cluster"]["name"]:
        # The schema keeps the cluster fixed; a graph still never trusts an answer blindly.
        decision = {**decision, "outcome": "rejected",
                    "note": f"the edit names another cluster ({edited.get('cluster')!r}); nothing was shut down"}
    return {"decision": decision}


def route_after_approval(state: FinOpsState) -> str:
    outcome = state["decision"]["outcome"]
    if outcome == "approved":
        return "act"
    if outcome == "timed_out":
        return "escalate"
    return "decline"


def act(state: FinOpsState) -> dict[str, Any]:
    """The Action agent: the shutdown is simulated, recorded in state, never sent to a cloud."""
    cluster, decision = state["cluster"], state["decision"]
    asked = state.get("approval_request") or {}
    how = {**{k: asked.get(k) for k in ("snapshot_first", "grace_period_minutes")}, **decision.get("edited", {})}
    action = {
        "action": "shutdown_cluster",
        "cluster": cluster["name"],
        "account": state["account"],
        "region": cluster["region"],
        "snapshot_first": how.get("snapshot_first"),
        "grace_period_minutes": how.get("grace_period_minutes"),
        "approved_by": decision.get("by") or cluster["owner"],
        "monthly_savings_usd": cluster["monthly_cost_usd"],
        "simulated": True,
    }
    return {
        "actions_taken": [action],
        "outcome": "shut_down",
        "summary": f"Shut down {cluster['name']} ({cluster['region']}) on {state['account']} with the owner's "
        f"approval: about ${cluster['monthly_cost_usd']:,} a month saved (simulated).",
    }


def escalate(state: FinOpsState) -> dict[str, Any]:
    """The Escalation edge: the owner did not answer in time, so tell their manager and stop."""
    cluster = state["cluster"]
    waited = _duration(timeout_of(state))
    notification = {
        "to": cluster["manager"],
        "channel": "slack",
        "about": cluster["name"],
        "message": f"{cluster['owner']} did not answer within {waited} about shutting down the idle dev cluster "
        f"{cluster['name']} ({cluster['region']}, ${cluster['monthly_cost_usd']:,}/month). Nothing was shut "
        "down; please decide.",
    }
    return {
        "notifications": [notification],
        "outcome": "escalated",
        "summary": f"No answer from {cluster['owner']} within {waited}; escalated to {cluster['manager']}. "
        "Nothing was shut down.",
    }


def decline(state: FinOpsState) -> dict[str, Any]:
    cluster, decision = state["cluster"], state["decision"]
    why = decision.get("comment") or decision.get("note") or "the owner declined"
    return {
        "outcome": "declined",
        "summary": f"{cluster['name']} keeps running: {why}.",
    }


workflow = StateGraph(FinOpsState, input_schema=FinOpsInput)
workflow.add_node("monitor", monitor)
workflow.add_node("diagnose", diagnose)
workflow.add_node("communicate", communicate)
workflow.add_node("await_approval", await_approval)
workflow.add_node("act", act)
workflow.add_node("escalate", escalate)
workflow.add_node("decline", decline)
workflow.add_edge(START, "monitor")
workflow.add_conditional_edges("monitor", route_after_monitor, {"diagnose": "diagnose", END: END})
workflow.add_conditional_edges("diagnose", route_after_diagnose, {"communicate": "communicate", END: END})
workflow.add_edge("communicate", "await_approval")
workflow.add_conditional_edges(
    "await_approval", route_after_approval, {"act": "act", "escalate": "escalate", "decline": "decline"}
)
workflow.add_edge("act", END)
workflow.add_edge("escalate", END)
workflow.add_edge("decline", END)
