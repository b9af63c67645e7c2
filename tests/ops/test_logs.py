"""Structured logs: JSON lines carrying the request id, and a worker's execution, graph and step."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client

from ops.logs import JsonFormatter
from orchestrator import logcontext, services
from orchestrator.models import Execution
from tests.services import start_worker, wait_for


class JsonFormatterTests:
    def test_a_line_is_one_json_object_with_the_bound_context_and_extras(self) -> None:
        record = logging.LogRecord("loopgate.test", logging.WARNING, __file__, 1, "stopped %s", ("here",), None)
        record.attempt = 2
        with logcontext.bound(execution_id="e-1", graph="finops"):
            logcontext.set_fields(step=4)
            line = json.loads(JsonFormatter().format(record))
        assert line["message"] == "stopped here" and line["level"] == "WARNING" and line["logger"] == "loopgate.test"
        assert (line["execution_id"], line["graph"], line["step"], line["attempt"]) == ("e-1", "finops", 4, 2)
        assert "step" not in logcontext.current()  # unbound when the block ends

    def test_an_exception_is_kept_as_text(self) -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            import sys

            record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
        assert "ValueError: boom" in json.loads(JsonFormatter().format(record))["exc"]


@pytest.mark.django_db
class RequestIdTests:
    def test_the_proxys_request_id_is_kept_and_one_is_made_otherwise(self) -> None:
        assert Client().get("/login/", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
        made = Client().get("/login/")["X-Request-ID"]
        assert len(made) == 32


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
class WorkerJsonLogTests:
    def test_a_workers_lines_about_a_run_name_its_execution_graph_and_step(self) -> None:
        worker = start_worker("jsonlog", LOG_FORMAT="json")
        try:
            execution = services.execution_start(graph_name="t_boom", input={"n": 0}, user=None)
            wait_for(lambda: Execution.objects.filter(id=execution.id, status=Execution.Status.FAILED).exists(),
                     what="the failing run")
            wait_for(lambda: "failed: the reactor overheated" in worker.output(), what="the runner's log line")
        finally:
            worker.kill()
        lines = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
        assert lines, worker.output()
        about = [line for line in lines if line.get("execution_id") == str(execution.id)]
        failed = next(line for line in about if "reactor overheated" in line["message"])
        assert failed["graph"] == "t_boom" and failed["logger"] == "orchestrator.runner"
        assert isinstance(failed["step"], int) and failed["worker"]
