"""The compose checks' reporting and commands (docker/check_stack.py, docker/check_resilience.py): one line per
check, exit non-zero on the first failure; `docker compose` with the caller's COMPOSE_* settings."""

from __future__ import annotations

import os
import subprocess
import sys


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"compose-test: FAILED: {message}")
    ok(message)


def ok(message: str) -> None:
    print(f"compose-test: ok: {message}", flush=True)


def compose(*args: str, env: dict | None = None) -> str:
    """docker compose's output; a failure ends the check with what compose said."""
    finished = subprocess.run(["docker", "compose", *args], capture_output=True, text=True, timeout=600,
                              env={**os.environ, **(env or {})})  # fmt: skip
    if finished.returncode != 0:
        sys.exit(f"compose-test: FAILED: docker compose {' '.join(args)}: {finished.stderr.strip()[-3000:]}")
    return finished.stdout.strip()


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
