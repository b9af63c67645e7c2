"""`manage.py run_graph` in the embedded default: SQLite, no Redis, an in-process Celery worker."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def embedded_env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LOOPGATE_GRAPHS")}
    env.update(DJANGO_SETTINGS_MODULE="orchestrator.settings", DATABASE_URL=f"sqlite:///{db}", PYTHONUNBUFFERED="1")
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


class RunGraphCommandTests:
    def test_follow_prints_a_line_per_step_and_the_final_state(self) -> None:
        from orchestrator.examples import seed

        db = Path(tempfile.mkdtemp(prefix="loopgate-embedded-")) / "db.sqlite3"
        env = embedded_env(db)
        migrated = manage(env, "migrate", "--noinput")
        assert migrated.returncode == 0, migrated.stderr
        data = {"task": "durable agents", "reports": [], "iterations": 0, "is_complete": False}
        result = manage(env, "run_graph", "seed", "--input", json.dumps(data), "--follow")
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        step_lines = [line for line in out.splitlines() if re.match(r"^step\s+\d+\s", line)]
        expected = seed.app.invoke(dict(data))
        # The input, then researcher and supervisor in turn until two reports exist.
        nodes = [line.split()[2] for line in step_lines]
        assert nodes == ["__start__"] + ["researcher", "supervisor"] * len(expected["reports"])
        assert all(re.search(r"\d+\.\d\d s\s+\d+ tokens", line) for line in step_lines)
        assert "succeeded after" in out
        final = json.loads(out[out.index("final state:") + len("final state:"):])
        assert final == expected

    def test_an_unknown_graph_is_a_clear_error(self) -> None:
        db = Path(tempfile.mkdtemp(prefix="loopgate-embedded-")) / "db.sqlite3"
        env = embedded_env(db)
        manage(env, "migrate", "--noinput")
        result = manage(env, "run_graph", "no_such_graph", "--follow")
        assert result.returncode != 0
        assert "no_such_graph" in result.stderr
