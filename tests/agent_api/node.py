"""Node.js for the JS client tests: the machine's ``node`` running ``clients/js`` with its pinned
packages (``scripts/test`` runs ``npm ci`` there). Missing either fails the test, never skips it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[2] / "clients" / "js"


def node(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``node <args>`` in clients/js; the caller checks ``returncode`` (stderr says why it failed)."""
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("Node.js 20+ is needed for the JS client tests and is not on PATH: install it, then run "
                    "scripts/test (it runs `npm ci` in clients/js).")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail("clients/js/node_modules is missing: run `npm ci` in clients/js (scripts/test does).")
    return subprocess.run([exe, *args], cwd=JS_DIR, capture_output=True, text=True, timeout=timeout, check=False)
