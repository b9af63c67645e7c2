"""The worker's Kubernetes probe, without starting Django (an exec probe runs often):

    python -m ops.probe [--file PATH] [--max-age SECONDS]

Exits 0 while the heartbeat file the worker touches (``ops/worker.py``) is
younger than ``--max-age``, 1 otherwise, saying why on standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

DEFAULT_FILE = "/tmp/loopgate-worker-heartbeat"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=os.environ.get("LOOPGATE_WORKER_HEARTBEAT_FILE") or DEFAULT_FILE)
    parser.add_argument("--max-age", type=float, default=60.0, help="seconds (default 60)")
    args = parser.parse_args(argv)
    try:
        age = time.time() - os.stat(args.file).st_mtime
    except FileNotFoundError:
        print(f"no heartbeat file at {args.file}: the worker is not ready (or not running)", file=sys.stderr)
        return 1
    if age > args.max_age:
        print(f"heartbeat {age:.0f} s old (more than {args.max_age:.0f} s): the worker or its database is stuck",
              file=sys.stderr)
        return 1
    print(f"ok: heartbeat {age:.1f} s old")
    return 0


if __name__ == "__main__":
    sys.exit(main())
