"""The chat page's committed bundle (static/chat/chat.js) and its licence list are what
clients/js/src builds with the pinned esbuild: a change to the source without `npm run build` fails."""

from __future__ import annotations

from tests.agent_api import node


def test_the_committed_chat_bundle_is_built_from_the_source() -> None:
    built = node.node("build.mjs", "--check")
    assert built.returncode == 0, built.stderr + built.stdout
