"""The browser-test harness: the real ASGI app under Daphne, and headless Chromium through Playwright.

Fixtures:
  ``asgi_server``  (session) Daphne serving ``orchestrator.asgi:application`` (HTTP, WebSockets and
                   ``/static/``) in a subprocess, on a free port, against the pytest-django test
                   database. ``asgi_server.url`` / ``asgi_server.ws_url``.
  ``browser``      (module) Debian's ``/usr/bin/chromium``, headless, launched by Playwright (which
                   never downloads a browser here). Missing Chromium fails the test, never skips it.
  ``page``         (function) a fresh 1280×800 context whose ``base_url`` is the server, so
                   ``page.goto("/executions/")`` works. Requests ``transactional_db``: rows the test
                   writes are committed, so the server process sees them.
  ``role_users``   (function) ``tests.factories.make_role_users()``: alice (admin), rita (reviewer),
                   otto (operator), charlie (no role); password ``PASSWORD``.
Helpers (import them: ``from tests.browser.conftest import login, screenshot``):
  ``login(page, username, password=PASSWORD)``  logs in through the login form, waits for the top bar.
  ``logout(page)``                             the top bar's "Log out" button.
  ``screenshot(page, name)``                   saves ``docs/screenshots/<name>.png`` at 1280×800.

Mark browser tests ``@pytest.mark.browser`` and ``@pytest.mark.django_db(transaction=True)``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "pw-for-tests"
SERVER_START_TIMEOUT = 30.0


# --- the server ------------------------------------------------------------------------------


@dataclass
class AsgiServer:
    host: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _test_database_url() -> str:
    """The test database (named by pytest-django once it is set up) as a DATABASE_URL."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("The browser tests run on PostgreSQL (DATABASE_URL=postgres://...).")
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"


def _server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",  # same password hashers as the test process
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL or "",
            # DEBUG on: WhiteNoise serves /static/ from the finders, no collectstatic needed.
            "DEBUG": "1",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        }
    )
    return env


def _wait_until_serving(server: AsgiServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Daphne exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(f"{server.url}/login/", timeout=2) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"GET /login/ answered {error.code}:\n{server.log_tail()}") from None
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"Daphne did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{server.log_tail()}")


@pytest.fixture(scope="session")
def asgi_server(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiServer]:
    """Daphne serving the real ASGI app (HTTP + WebSockets + static files) on the test database."""
    host = "127.0.0.1"
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    env = _server_env()
    server: AsgiServer | None = None
    for _attempt in range(3):  # a freshly picked free port can, rarely, be taken before Daphne binds it
        port = _free_port(host)
        log = open(log_path, "ab")  # noqa: SIM115  (closed below, after the process)
        process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "orchestrator.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = AsgiServer(host=host, port=port, process=process, log_path=log_path)
        try:
            _wait_until_serving(server)
            break
        except RuntimeError:
            process.kill()
            process.wait()
            log.close()
            if "Address already in use" not in server.log_tail():
                raise
    else:
        raise RuntimeError(f"Daphne could not bind a port:\n{server.log_tail() if server else ''}")
    try:
        yield server
    finally:
        # Stop before pytest-django drops the test database the server is connected to.
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Debian Chromium. Module-scoped: Playwright's sync API keeps an event loop running in this
    thread, so it is stopped after each browser module and never outlives the browser tests."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Install it with "
            "`apt-get update && apt-get install -y chromium` (scripts/test does). Playwright must not download one.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio loop in this thread; Django's ORM would then refuse
    # to run here ("async context"). The test code is plain synchronous code, so allow it while
    # the browser lives, and only then.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[object]:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
def page(
    request: pytest.FixtureRequest, browser, asgi_server: AsgiServer, transactional_db: None
) -> Iterator[object]:
    """A fresh page (own cookies) at 1280×800 on the live server; relative URLs go to it.

    ``page.js_errors`` lists uncaught JavaScript errors; when the test fails, the end of the
    server's log is printed with it.
    """
    context = browser.new_context(viewport=VIEWPORT, base_url=asgi_server.url, locale="en-US")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.js_errors = errors
    try:
        yield tab
    finally:
        context.close()
        if request.node.stash.get(_CALL_FAILED, False):
            print(f"--- the last lines of the Daphne log ({asgi_server.log_path}) ---\n{asgi_server.log_tail()}")


@pytest.fixture
def role_users(transactional_db: None) -> dict:
    from tests.factories import make_role_users

    return make_role_users()


# --- helpers ------------------------------------------------------------------------------------


def login(page, username: str, password: str = PASSWORD, *, next_url: str = "") -> None:
    """Log in through the real login form and wait for the top bar."""
    page.goto("/login/" + (f"?next={quote(next_url)}" if next_url else ""))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.locator("header.topbar .username").filter(has_text=username).wait_for()


def logout(page) -> None:
    page.locator("header.topbar").get_by_role("button", name="Log out").click()
    page.wait_for_url("**/login/**")


def screenshot(page, name: str, *, full_page: bool = False, viewport: dict | None = None) -> Path:
    """Save ``docs/screenshots/<name>.png`` at 1280×800 (or ``viewport``), after fonts and layout settle."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = viewport or VIEWPORT
    if page.viewport_size != size:
        page.set_viewport_size(size)
    page.evaluate("document.fonts ? document.fonts.ready.then(() => true) : true")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide")
    return path
