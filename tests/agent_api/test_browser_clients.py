"""What browser clients of other origins (agent-chat-ui, Agent Inbox) need of /langgraph/: a CORS
answer to their preflight for the origins an admin allowed, with the SDK's ``x-api-key`` header;
a token, never the session; nothing for other origins or other paths. And the chat page, whose
calls carry the session and the CSRF token instead."""

from __future__ import annotations

from django.test import TestCase, override_settings
from rest_framework.authtoken.models import Token

from tests.factories import make_role_users

UI = "http://localhost:3000"


def preflight(client, path: str, origin: str = UI):  # type: ignore[no-untyped-def]
    return client.options(path, HTTP_ORIGIN=origin, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                          HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-api-key")


@override_settings(CORS_ALLOWED_ORIGINS=[UI])
class CorsTests(TestCase):
    def setUp(self) -> None:
        self.users = make_role_users()

    def test_an_allowed_origin_may_send_the_sdks_api_key_and_read_the_runs_location(self) -> None:
        answer = preflight(self.client, "/langgraph/threads/search")
        self.assertEqual(answer.status_code, 200)
        self.assertEqual(answer["access-control-allow-origin"], UI)
        self.assertIn("x-api-key", answer["access-control-allow-headers"])
        self.assertNotIn("access-control-allow-credentials", answer)

        token = Token.objects.create(user=self.users["operator"]).key
        found = self.client.post("/langgraph/assistants/search", {"graph_id": "lg_note"}, content_type="application/json",
                                 HTTP_ORIGIN=UI, HTTP_X_API_KEY=token)
        self.assertEqual(found.status_code, 200)
        self.assertEqual(found["access-control-allow-origin"], UI)
        self.assertIn("content-location", found["access-control-expose-headers"])
        self.assertEqual([a["graph_id"] for a in found.json()], ["lg_note"])

    def test_other_origins_and_other_paths_get_no_cors_answer(self) -> None:
        self.assertNotIn("access-control-allow-origin", preflight(self.client, "/langgraph/threads", "https://evil.example"))
        self.assertNotIn("access-control-allow-origin", preflight(self.client, "/api/v1/executions/"))

    def test_a_cross_origin_request_with_the_session_alone_is_refused(self) -> None:
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.users["admin"])
        refused = client.post("/langgraph/threads", {}, content_type="application/json", HTTP_ORIGIN=UI)
        self.assertEqual(refused.status_code, 403)  # the session's writes need this origin's CSRF token


class ChatPageTests(TestCase):
    def setUp(self) -> None:
        self.users = make_role_users()

    def test_the_page_carries_the_csrf_token_and_what_the_user_may_do(self) -> None:
        self.client.force_login(self.users["reviewer"])
        page = self.client.get("/chat/")
        self.assertContains(page, 'data-can-start="false" data-can-decide="true"')
        self.assertContains(page, "chat/chat.js")
        self.assertIn("csrftoken", page.cookies)

    def test_the_api_takes_the_session_only_with_the_csrf_token(self) -> None:
        client = self.client_class(enforce_csrf_checks=True)
        client.force_login(self.users["operator"])
        client.get("/chat/")
        refused = client.post("/langgraph/threads", {}, content_type="application/json")
        self.assertEqual(refused.status_code, 403)
        streamed = client.post("/langgraph/runs/stream", {"assistant_id": "lg_echo"}, content_type="application/json")
        self.assertEqual(streamed.status_code, 403)
        made = client.post("/langgraph/threads", {}, content_type="application/json",
                           HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
        self.assertEqual(made.status_code, 200, made.content)

    def test_visitors_are_sent_to_log_in(self) -> None:
        self.assertRedirects(self.client.get("/chat/"), "/login/?next=/chat/", fetch_redirect_response=False)
