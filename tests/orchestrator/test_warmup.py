"""A web process loads its graphs, URLconf and live templates when it starts, not on the first push."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import orchestrator.asgi  # what daphne imports
from django.template import engines
from orchestrator.registry import catalog
from orchestrator.warmup import LIVE_TEMPLATES

def caches(loaders):
    for loader in loaders:
        if hasattr(loader, "get_template_cache"):
            yield loader.get_template_cache
        yield from caches(getattr(loader, "loaders", []))

cached = {key.split("-")[0] for cache in caches(engines["django"].engine.template_loaders) for key in cache}
entries = catalog.all_entries()
print("urls", "orchestrator.urls" in sys.modules)
print("templates", all(name in cached for name in LIVE_TEMPLATES))
print("graphs", bool(entries) and all(e._compiled is not None for e in entries if e.error is None))
"""


def test_importing_the_asgi_application_loads_what_the_first_push_needs() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "LOOPGATE_EXAMPLES": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == ["urls True", "templates True", "graphs True"], out.stdout + out.stderr
