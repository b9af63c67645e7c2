"""`manage.py serve` says the address it serves on, fails with one clear line when the port is taken,
and the demo set-up names the same address (HOST and PORT, as scripts/run passes them)."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command
from django.test import TestCase

ROOT = Path(__file__).resolve().parents[2]


def test_a_taken_port_fails_at_once_with_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
        result = subprocess.run([sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert f"Port {port} on 127.0.0.1 is taken by another program" in result.stderr
    assert "serving on" not in result.stdout  # it never claims to serve
    assert "Traceback" not in result.stderr


class DemoAddressTests(TestCase):
    def test_the_demo_set_up_names_the_address_the_server_will_use(self) -> None:
        out = io.StringIO()
        old = {k: os.environ.get(k) for k in ("HOST", "PORT")}
        os.environ.update(HOST="127.0.0.1", PORT="8011")
        try:
            call_command("setup_demo", password="a-password-for-tests", stdout=out)
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        self.assertIn("Log in at http://127.0.0.1:8011/ as:", out.getvalue())
