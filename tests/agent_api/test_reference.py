"""Side by side with LangGraph's own server: the SDK journey (tests/agent_api/journey.py) gives the
same answers against Loopgate as against ``langgraph dev`` serving the same graphs.

``langgraph dev`` is a reference to compare with, never a dependency: it lives in a virtual
environment of its own (``python -m venv refvenv && refvenv/bin/pip install "langgraph-cli[inmem]"``),
named by ``LOOPGATE_LANGGRAPH_REFERENCE_VENV`` (default ``/work/wt/refvenv``). Without it this one
test is skipped, saying so; the journey against Loopgate (test_journey.py) always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_api.journey import journey, stream_journey
from tests.services import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
HERE = Path(__file__).resolve().parent
VENV = Path(os.environ.get("LOOPGATE_LANGGRAPH_REFERENCE_VENV", "/work/wt/refvenv"))


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    langgraph = VENV / "bin" / "langgraph"
    if not os.access(langgraph, os.X_OK):
        pytest.skip(f"no reference server: {langgraph} is missing (set LOOPGATE_LANGGRAPH_REFERENCE_VENV to a venv "
                    "with langgraph-cli[inmem]); the journey against Loopgate runs in test_journey.py")
    workdir = Path(tempfile.mkdtemp(prefix="loopgate-langgraph-dev-"))
    for name in ("graphs.py", "langgraph.json"):
        shutil.copy(HERE / name, workdir / name)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "LOOPGATE", "DATABASE", "REDIS"))}
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen([str(langgraph), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1",
                             "--port", str(port)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ok", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("langgraph dev did not start:\n" +
                                       (workdir / "server.log").read_text(errors="replace")[-3000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)


class ReferenceTests:
    def test_the_sdk_journey_answers_as_langgraph_dev_does(self, lg, reference: str) -> None:
        from langgraph_sdk import get_sync_client

        theirs = journey(get_sync_client(url=reference, api_key=None), get_sync_client(url=reference, api_key=None))
        ours = journey(lg.sync("operator"), lg.sync("reviewer"))
        differ = {key: (theirs[key], ours[key]) for key in theirs if key != "ids" and theirs[key] != ours[key]}
        assert not differ, differ
        assert set(theirs) == set(ours)

    def test_runs_stream_yields_what_langgraph_dev_yields(self, lg, reference: str) -> None:
        from langgraph_sdk import get_sync_client

        theirs = stream_journey(get_sync_client(url=reference, api_key=None),
                                get_sync_client(url=reference, api_key=None))
        ours = stream_journey(lg.sync("operator"), lg.sync("reviewer"))
        differ = {key: (theirs[key], ours[key]) for key in theirs if theirs[key] != ours[key]}
        assert not differ, differ
        assert theirs["values_updates"][0] == ("metadata", ["attempt", "run_id"])

    def test_the_js_sdk_journey_answers_as_langgraph_dev_does(self, lg, reference: str) -> None:
        """clients/js/journey.mjs (LangGraph's JS SDK, in Node.js) sees the same streams, interrupt, state and
        history from both servers; only the runs differ: Loopgate's resume goes on in the same run (README)."""
        from tests.agent_api import node

        def seen(url: str, key: str) -> dict:
            done = node.node("journey.mjs", url, key)
            assert done.returncode == 0, done.stderr
            out = json.loads(done.stdout)
            for part in ("first", "resumed"):
                out[part]["metadata"] = sorted(out[part]["metadata"])
                out[part]["partials"] = list(out[part]["partials"].values())  # keyed by message ids
            del out["thread_id"]
            return out

        theirs, ours = seen(reference, "no-key-needed"), seen(lg.url, lg.tokens["admin"])
        assert [r["status"] for r in theirs.pop("runs")] == ["success", "success"]
        assert [r["status"] for r in ours.pop("runs")] == ["success"]
        differ = {key: (theirs[key], ours[key]) for key in theirs if theirs[key] != ours[key]}
        assert not differ, differ
