"""Bad input at the door: oversized bodies (413, unread), malformed JSON (400), nothing half-written."""

from __future__ import annotations

import io
import json
from typing import Any

from django.test import RequestFactory, override_settings

from orchestrator.middleware import RequestSizeLimitMiddleware
from orchestrator.models import Execution
from tests.base import ApiTestCase, PageTestCase
from tests.factories import SEED_INPUT


class RequestLimitTests(ApiTestCase):
    def test_a_body_over_the_limit_is_refused_with_413_before_it_is_parsed(self) -> None:
        padding = "x" * (1024 * 1024)
        body = json.dumps({"graph": "seed", "input": {"task": padding}})
        response = self.api("operator").post("/api/v1/executions/", body, content_type="application/json")
        assert response.status_code == 413
        assert response.json()["code"] == "request_too_large"
        assert response.json()["extra"]["limit_bytes"] == 1024 * 1024
        assert not Execution.objects.exists()

    def test_the_limit_is_a_setting_and_bodies_under_it_pass(self) -> None:
        body = json.dumps({"graph": "seed", "input": {**SEED_INPUT, "task": "x" * 3000}})
        with override_settings(LOOPGATE_MAX_REQUEST_BYTES=2048):
            assert self.api("operator").post("/api/v1/executions/", body, content_type="application/json").status_code \
                == 413
        with override_settings(LOOPGATE_MAX_REQUEST_BYTES=4096):
            assert self.api("operator").post("/api/v1/executions/", body, content_type="application/json").status_code \
                == 202

    def test_the_middleware_never_reads_an_oversized_body(self) -> None:
        class Exploding(io.BytesIO):
            def read(self, *args: Any) -> bytes:
                raise AssertionError("the body was read")

        request = RequestFactory().post("/api/v1/executions/", data=b"{}", content_type="application/json")
        request.META["CONTENT_LENGTH"] = str(10 * 1024 * 1024)
        request.META["wsgi.input"] = Exploding()
        request._stream = Exploding()  # type: ignore[attr-defined]
        response = RequestSizeLimitMiddleware(lambda r: (_ for _ in ()).throw(AssertionError("view ran")))(request)
        assert response.status_code == 413

    def test_a_body_without_a_declared_length_is_counted_as_it_is_read(self) -> None:
        seen = {}

        def view(request: Any) -> Any:
            from django.http import HttpResponse

            seen["body"] = request.body
            return HttpResponse("ok")

        with override_settings(LOOPGATE_MAX_REQUEST_BYTES=1024):
            for size, status in ((1024, 200), (1025, 413)):
                request = RequestFactory().generic("POST", "/api/v1/executions/", data=b"a" * size,
                                                   content_type="application/json")
                del request.META["CONTENT_LENGTH"]
                request._stream = io.BytesIO(b"a" * size)  # type: ignore[attr-defined]
                assert RequestSizeLimitMiddleware(view)(request).status_code == status, size
        assert seen["body"] == b"a" * 1024

    def test_a_content_length_that_is_not_a_number_is_a_400(self) -> None:
        request = RequestFactory().post("/api/v1/executions/", data=b"{}", content_type="application/json")
        request.META["CONTENT_LENGTH"] = "lots"
        response = RequestSizeLimitMiddleware(lambda r: None)(request)  # type: ignore[arg-type,return-value]
        assert response.status_code == 400

    def test_malformed_json_is_a_400(self) -> None:
        for body in ('{"graph": "seed",', "{'graph': 'seed'}", '{"graph": NaN}', "[1, 2]", '"seed"'):
            response = self.api("operator").post("/api/v1/executions/", body, content_type="application/json")
            assert response.status_code == 400, body
            assert set(response.json()) == {"message", "code", "extra"}
        assert not Execution.objects.exists()

    def test_a_body_that_is_not_json_is_a_415(self) -> None:
        response = self.api("operator").post("/api/v1/executions/", {"graph": "seed"}, format="multipart")
        assert response.status_code == 415
        assert response.json()["code"] == "unsupported_media_type"


class PageRequestLimitTests(PageTestCase):
    def test_pages_outside_the_api_get_a_plain_413(self) -> None:
        self.login("operator")
        response = self.client.post("/graphs/seed/start/", {"input": "x" * (1024 * 1024 + 10)})
        assert response.status_code == 413
        assert response["Content-Type"].startswith("text/plain")
