"""The compose checks' reporting and commands (docker/check_*.py): one line per check, exit non-zero on the first
failure; `docker compose` with the caller's COMPOSE_* settings; no token in the containers' logs."""

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


def no_token_in_logs(made: list[str]) -> None:
    """Neither FASHION_SOFTMAX_TOKEN nor any of `made` appears in the logs of the compose project's containers."""
    logs = compose("logs", "--no-color")
    leaked = [token for token in [os.environ["FASHION_SOFTMAX_TOKEN"], *made] if token in logs]
    check(not leaked, f"no token in the containers' logs ({len(logs.splitlines())} lines, {1 + len(made)} tokens)")
