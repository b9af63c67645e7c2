"""A supervisor and a researcher in a loop.

The researcher adds a finding to the reports; the supervisor sends it back for
more until there are two findings (or more than three rounds), then ends.
No LLM is called, so it runs anywhere, instantly. This is the researcher /
supervisor graph of the seed document "Implementing AI-Native Agent
Orchestration Patterns in Microservices", unchanged.
"""

# The code from "# Define the shared state" to "app = workflow.compile()" is
# the seed document's, verbatim (including its unused import and its plain
# ``typing.TypedDict``): Loopgate's promise is that existing graphs run
# unchanged, so the registry adapts to this code, not the other way round.

# Define the shared state across all agents
from typing import TypedDict, List, Annotated
from langgraph.graph import StateGraph, END

class AgentState(TypedDict):
    task: str
    reports: List[str]
    iterations: int
    is_complete: bool

# The Supervisor node: decides the next move
def supervisor_node(state: AgentState):
    if state["iterations"] > 3 or len(state["reports"]) >= 2:
        return {"is_complete": True}
    return {"is_complete": False, "iterations": state["iterations"] + 1}

# The Researcher node: simulates data gathering
def researcher_node(state: AgentState):
    new_data = f"Research finding index: {len(state['reports'])}"
    return {"reports": state["reports"] + [new_data]}

# Construct the Graph
workflow = StateGraph(AgentState)

# Add nodes to the graph
workflow.add_node("supervisor", supervisor_node)
workflow.add_node("researcher", researcher_node)

# Define edges: Logic to move between nodes
workflow.set_entry_point("researcher")
workflow.add_edge("researcher", "supervisor")

# Conditional logic: Loop back or finish
workflow.add_conditional_edges(
    "supervisor",
    lambda x: "end" if x["is_complete"] else "researcher",
    {
        "end": END,
        "researcher": "researcher"
    }
)

app = workflow.compile()

# Loopgate: what the start form on the Graphs page is prefilled with.
EXAMPLE_INPUT = {
    "task": "Survey durable execution engines for agent graphs",
    "reports": [],
    "iterations": 0,
    "is_complete": False,
}
