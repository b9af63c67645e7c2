"""No input gives a 500: arbitrary query parameters on every page, arbitrary WebSocket paths, deep JSON.

A property-based test (hypothesis) drives every GET page's query parameters with
arbitrary text (NUL, superscript digits, huge numbers, far dates included) as
each role, and every WebSocket path with arbitrary strings; the answer is never
a 5xx and a socket never crashes the server. Specific cases the probe found
are pinned below as plain tests: each must be a 400 (or a clear refusal).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.models import Execution
from orchestrator.params import MAX_JSON_DEPTH
from tests.factories import make_role_users
from tests.traces.builders import make_execution, make_steps

# Every page a GET reaches, with the query parameters it reads (and some it does not).
PAGES: list[tuple[str, list[str]]] = [
    ("/graphs/", []),
    ("/budgets/", []),
    ("/tokens/", []),
    ("/approvals/", ["graph", "age", "mine"]),
    ("/approvals/audit/", ["user", "graph", "date_from", "date_to", "export", "page"]),
    ("/executions/", ["q", "graph", "status", "since", "until", "page"]),
    ("/executions/{id}/", ["node", "after"]),
    ("/executions/{id}/steps/", ["node", "after", "regions", "catchup"]),
    ("/executions/{id}/steps/{step}/", ["format"]),
    ("/executions/{id}/export.json", []),
    ("/executions/{id}/state/", ["checkpoint", "ns"]),
    ("/executions/{id}/lineage/", []),
    ("/executions/{id}/compare/", ["with", "row"]),
    ("/api/v1/", []),
    ("/api/v1/approvals/00000000-0000-0000-0000-000000000000/", []),
    ("/api/v1/graphs/", []),
    ("/api/v1/executions/", ["graph", "status", "created_after", "created_before", "page", "page_size"]),
    ("/api/v1/executions/{id}/", []),
    ("/api/v1/executions/{id}/steps/", ["page", "page_size"]),
    ("/api/v1/executions/{id}/spans/", ["kind", "page", "page_size"]),
    ("/api/v1/approvals/", ["status", "graph", "execution", "page", "page_size"]),
    ("/api/v1/budgets/", []),
]

# Values that broke pages before, mixed into arbitrary text.
NASTY = ["\x00", "²", "9999-12-31", "0001-01-01", "99999999999999999999999", "-1", "1e9", "١٢", " 1", "",
         "\ud7ff", "%", "../", "<script>", "' OR 1=1 --", "2026-02-30", "00000000-0000-0000-0000-000000000000"]
values = st.one_of(st.sampled_from(NASTY), st.text(max_size=40), st.integers().map(str),
                   st.dates().map(str), st.uuids().map(str))


def _params(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    # Each of the page's parameters, maybe, with a nasty or an arbitrary value; and an unknown one.
    known = st.tuples(*(st.one_of(st.none(), st.sampled_from(NASTY), values) for _ in names)).map(
        lambda drawn: [(name, value) for name, value in zip(names, drawn) if value is not None])
    unknown = st.lists(st.tuples(st.text(max_size=10), values), max_size=1)
    return st.tuples(known, unknown).map(lambda both: both[0] + both[1])


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    users = make_role_users()
    execution = make_execution(status=Execution.Status.SUCCEEDED)
    steps = make_steps(execution, 3)
    clients = {}
    for role, user in users.items():
        client = Client()
        client.force_login(user)
        clients[role] = client
    return {"clients": clients, "execution": execution, "step": steps[0]}


def _url(template: str, world: dict[str, Any]) -> str:
    return template.format(id=world["execution"].id, step=world["step"].id)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(PAGES), role=st.sampled_from(["admin", "reviewer", "operator", "outsider"]), data=st.data())
def test_no_query_string_on_any_page_gives_a_server_error(world: dict[str, Any], page: tuple[str, list[str]],
                                                          role: str, data: st.DataObject) -> None:
    template, names = page
    pairs = data.draw(_params(names))
    url = _url(template, world) + "?" + urlencode(pairs)
    response = world["clients"][role].get(url)
    assert response.status_code < 500, (url, response.status_code)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page=st.sampled_from(PAGES), raw=st.binary(max_size=30))
def test_no_raw_query_bytes_give_a_server_error(world: dict[str, Any], page: tuple[str, list[str]], raw: bytes) -> None:
    # Percent-encoded arbitrary bytes: invalid UTF-8, NUL, lone surrogates' halves.
    url = _url(page[0], world) + "?" + "&".join(f"{name}={quote(raw)}" for name in (page[1] or ["x"]))
    response = world["clients"]["admin"].get(url)
    assert response.status_code < 500, (url, response.status_code)


def test_every_parameter_of_every_page_with_every_known_nasty_value(world: dict[str, Any]) -> None:
    failures = []
    for template, names in PAGES:
        for name in names:
            for value in NASTY:
                url = _url(template, world) + "?" + urlencode({name: value})
                try:
                    status = world["clients"]["operator"].get(url).status_code
                except Exception as exc:  # noqa: BLE001  (collected: the assertion lists every one)
                    status = f"{type(exc).__name__}: {exc}"
                if not isinstance(status, int) or status >= 500:
                    failures.append((url, status))
    assert not failures, failures


# --- WebSocket paths -------------------------------------------------------------------------------


def _ws_connect(path: str, query: bytes, user: Any) -> tuple[bool, Any]:
    from orchestrator.asgi import application

    async def run() -> tuple[bool, Any]:
        comm = WebsocketCommunicator(application, path, headers=[(b"origin", b"http://127.0.0.1"),
                                                                 (b"host", b"127.0.0.1")])
        comm.scope["query_string"] = query
        comm.scope["user"] = user
        try:
            connected, code = await comm.connect(timeout=5)
        finally:
            await comm.disconnect()
        return connected, code

    return async_to_sync(run)()


ws_paths = st.one_of(
    st.sampled_from(["/ws/nope/", "/ws/", "/ws/executions/not-a-uuid/", "/ws/approvals/x/", "/ws/executions/\x00/"]),
    st.text(max_size=40).map(lambda s: "/ws/" + s),
    st.uuids().map(lambda u: f"/ws/executions/{u}/"),
)


@pytest.mark.django_db(transaction=True)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=ws_paths, query=st.one_of(st.just(b""), st.binary(max_size=30),
                                      st.sampled_from([b"since=nan", b"since=1e999", b"graph=%00", b"age=\xff"])))
def test_no_websocket_path_or_query_crashes_the_server(path: str, query: bytes) -> None:
    from django.contrib.auth.models import AnonymousUser

    # An unknown path or a malformed query is refused (closed), never an exception out of the application.
    _ws_connect(path, query, AnonymousUser())


@pytest.mark.django_db(transaction=True)
def test_the_inbox_socket_with_hostile_filters_is_refused_or_served_as_a_reviewer() -> None:
    users = make_role_users()
    for query in (b"rows=1&graph=%00", b"rows=1&since=nan", b"rows=1&age=\xff\xfe", b"since=1e999"):
        _ws_connect("/ws/approvals/", query, users["reviewer"])  # never raises


# --- the cases found by the probe, each a 400 ------------------------------------------------------


@pytest.mark.parametrize("url", [
    "/executions/{id}/?after=²",
    "/executions/{id}/steps/?after=²",
    "/executions/{id}/?after=99999999999999999999999",
    "/executions/{id}/?node=%00",
    "/executions/{id}/steps/?node=%00",
    "/executions/{id}/state/?checkpoint=%00",
    "/executions/{id}/state/?ns=%00",
    "/executions/{id}/compare/?row=²",
    "/executions/?q=%00",
])
def test_bad_query_values_are_a_400_naming_the_parameter(world: dict[str, Any], url: str) -> None:
    response = world["clients"]["admin"].get(_url(url, world))
    assert response.status_code == 400, response.status_code
    name = url.split("?")[1].split("=")[0]
    assert f"“{name}”" in response.content.decode(), response.content.decode()[:500]


@pytest.mark.parametrize("url", ["/executions/?until=9999-12-31", "/executions/?since=9999-12-31",
                                 "/approvals/audit/?date_to=9999-12-31"])
def test_a_far_date_is_shown_as_a_filter_error_not_a_500(world: dict[str, Any], url: str) -> None:
    response = world["clients"]["admin"].get(url)
    assert response.status_code == 200
    assert "between" in response.content.decode()


def _deep(depth: int) -> str:
    """JSON text of ``depth`` nested arrays (json.dumps itself cannot write 1,000 levels)."""
    return "[" * depth + '"x"' + "]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, 1000])
def test_deep_json_to_the_api_is_a_400_in_the_api_shape(world: dict[str, Any], depth: int) -> None:
    # The input object and the body's object make two levels more than the arrays.
    body = '{"graph": "t_counter", "input": {"n": 0, "log": %s}}' % _deep(depth)
    response = world["clients"]["admin"].post("/api/v1/executions/", body, content_type="application/json")
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"] == "parse_error" and f"nested deeper than {MAX_JSON_DEPTH}" in payload["message"]
    assert not Execution.objects.filter(graph_name="t_counter").exists()


def test_json_at_the_depth_limit_is_parsed() -> None:
    from orchestrator.params import json_loads_bounded

    value = json_loads_bounded('{"a": %s}' % _deep(MAX_JSON_DEPTH - 1))
    assert value["a"][0][0]


def test_deep_json_in_the_start_form_is_a_422_with_the_field_error(world: dict[str, Any]) -> None:
    response = world["clients"]["admin"].post("/graphs/t_counter/start/",
                                              {"input": '{"task": %s}' % _deep(1000)})
    assert response.status_code == 422
    assert f"nested deeper than {MAX_JSON_DEPTH}" in response.content.decode()
    assert not Execution.objects.filter(graph_name="t_counter").exists()


def test_deep_json_in_the_fork_form_is_a_422_with_the_field_error(world: dict[str, Any]) -> None:
    from orchestrator.params import json_loads_bounded
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        json_loads_bounded('{"task": %s}' % _deep(1000))
    assert f"nested deeper than {MAX_JSON_DEPTH}" in caught.value.messages[0]
    from traces.forms import ForkForm

    form = ForkForm({"checkpoint": "c", "state": '{"task": %s}' % _deep(101)}, nodes=["a"])
    assert not form.is_valid()
    assert f"nested deeper than {MAX_JSON_DEPTH}" in str(form.errors["state"])


# --- required input keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("graph, field", [("finops", "account"), ("deep_research", "task"), ("seed", "reports")])
def test_input_without_a_required_key_is_a_400_naming_it_on_the_api(world: dict[str, Any], graph: str,
                                                                     field: str) -> None:
    from orchestrator import registry

    registry.reset()
    data = {key: value for key, value in registry.get_graph(graph).example_input.items() if key != field}
    before = Execution.objects.count()
    response = world["clients"]["operator"].post("/api/v1/executions/", {"graph": graph, "input": data},
                                                 content_type="application/json")
    assert response.status_code == 400, response.content
    assert f"input.{field}" in response.json()["extra"]["fields"]
    assert Execution.objects.count() == before


def test_input_without_a_required_key_is_refused_on_the_start_form_naming_it(world: dict[str, Any]) -> None:
    response = world["clients"]["operator"].post("/graphs/finops/start/", {"input": "{}"})
    assert response.status_code == 422
    assert "The input needs &#x27;account&#x27;" in response.content.decode()
    assert not Execution.objects.filter(graph_name="finops").exists()


def test_the_service_alone_takes_partial_input_as_langgraph_does(world: dict[str, Any]) -> None:
    from orchestrator import services

    execution = services.execution_start(graph_name="finops", input={}, user=None)
    assert execution.input == {}


# --- one rule for graphs, and the budget raise's bounds --------------------------------------------------


def test_a_user_without_a_role_sees_no_graph_on_the_page_or_the_api(world: dict[str, Any]) -> None:
    client = world["clients"]["outsider"]
    page = client.get("/graphs/")
    assert page.status_code == 200
    assert "You cannot see graphs yet." in page.content.decode()
    assert "finops" not in page.content.decode() and "mermaid" not in page.content.decode().split("<main")[-1]
    assert client.get("/api/v1/graphs/").json()["count"] == 0
    reader = world["clients"]["reviewer"].get("/graphs/").content.decode()
    assert "finops" in reader
    assert world["clients"]["reviewer"].get("/api/v1/graphs/").json()["count"] > 0


def test_the_budget_raise_schema_and_message_say_the_rule(world: dict[str, Any]) -> None:
    from orchestrator.budgets import MAX_TOKEN_BUDGET

    schema = world["clients"]["admin"].get("/api/schema/?format=json").json()
    field = schema["components"]["schemas"]["ExecutionBudgetRaiseInputRequest"]["properties"]["token_budget"]
    assert (field["minimum"], field["maximum"]) == (1, MAX_TOKEN_BUDGET)
    url = f"/api/v1/executions/{world['execution'].id}/budget/"
    response = world["clients"]["admin"].post(url, {"token_budget": MAX_TOKEN_BUDGET + 1},
                                              content_type="application/json")
    assert response.status_code == 400
    assert "token_budget" in response.json()["extra"]["fields"]
    from orchestrator.budgets.admin import _check_amount
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        _check_amount(MAX_TOKEN_BUDGET + 1, field="token_budget", optional=False, minimum=1)
    assert "from 1 to 1,000,000,000,000" in str(caught.value)


# --- nested JSON of any shape and depth ------------------------------------------------------------------


def _nest(shape: list[bool], leaf: str) -> str:
    """JSON text nesting ``leaf`` in arrays (False) and objects (True), outermost first."""
    opened = "".join('{"k": ' if is_object else "[" for is_object in shape)
    closed = "".join("}" if is_object else "]" for is_object in reversed(shape))
    return opened + leaf + closed


nestings = st.tuples(st.lists(st.booleans(), min_size=1, max_size=60), st.integers(0, 1500),
                     st.sampled_from(['"x"', "1", "null", "NaN", "[]", '"\\u0000"', "1e999", '"\\ud800"']))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(nesting=nestings)
def test_no_nested_json_to_the_api_or_the_start_form_gives_a_server_error(world: dict[str, Any],
                                                                          nesting: tuple[list[bool], int, str]) -> None:
    shape, extra_depth, leaf = nesting
    value = _nest(shape + [False] * extra_depth, leaf)
    body = '{"graph": "t_counter", "input": {"n": 0, "log": %s}}' % value
    response = world["clients"]["operator"].post("/api/v1/executions/", body, content_type="application/json")
    assert response.status_code < 500, response.status_code
    assert response["Content-Type"] == "application/json"
    page = world["clients"]["operator"].post("/graphs/t_counter/start/", {"input": '{"log": %s}' % value})
    assert page.status_code < 500, page.status_code


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_numbers_json_cannot_hold_are_a_400(world: dict[str, Any], number: str) -> None:
    body = '{"graph": "t_counter", "input": {"n": 0, "log": [%s]}}' % number
    response = world["clients"]["operator"].post("/api/v1/executions/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("text", ['"\\ud800"', '"a\\u0000b"'])
def test_text_postgres_cannot_store_in_the_start_form_is_a_422(world: dict[str, Any], text: str) -> None:
    # Found by the nested-JSON property test: a lone surrogate reached Postgres from the page.
    before = Execution.objects.count()
    page = world["clients"]["operator"].post("/graphs/t_counter/start/", {"input": '{"log": [%s]}' % text})
    assert page.status_code == 422
    assert "cannot be stored" in page.content.decode()
    assert Execution.objects.count() == before
