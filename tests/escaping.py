"""Hostile text for the tests that prove untrusted text is never rendered as HTML, and the check."""

from __future__ import annotations

from typing import Any

from django.template import Context, Template

HOSTILE = '<script>window.__x=1</script><img src=x onerror="window.__x=2">'
ESCAPED = "&lt;script&gt;window.__x=1&lt;/script&gt;&lt;img src=x onerror=&quot;window.__x=2&quot;&gt;"


def render_template(source: str, *libraries: str, **context: Any) -> str:
    """``source`` rendered after ``{% load <libraries> %}``."""
    return Template("{% load " + " ".join(libraries) + " %}" + source).render(Context(context))


class AssertSafeMixin:
    def assertNoLiveMarkup(self, html: str) -> None:
        """No hostile tag or attribute survives unescaped; the text is there, escaped."""
        self.assertNotIn("<script", html)  # type: ignore[attr-defined]
        self.assertNotIn("<img", html)  # type: ignore[attr-defined]
        self.assertNotIn('onerror="', html)  # type: ignore[attr-defined]
        self.assertIn(ESCAPED, html)  # type: ignore[attr-defined]
