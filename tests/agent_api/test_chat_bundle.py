"""The chat page's committed bundle (static/chat/chat.js) and its licence list are what
clients/js/src builds with the pinned esbuild: a change to the source without `npm run build` fails."""

from __future__ import annotations

import pytest

from tests.agent_api import node


def test_the_committed_chat_bundle_is_built_from_the_source() -> None:
    built = node.node("build.mjs", "--check")
    assert built.returncode == 0, built.stderr + built.stdout


def test_without_node_the_js_tests_fail_saying_so(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="Node.js 20\\+ is needed"):
        node.node("build.mjs", "--check")
