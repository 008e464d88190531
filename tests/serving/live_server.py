"""Our service as `make serve` runs it (`python -m serving`: Granian), on a free port of 127.0.0.1,
for tests over real HTTP. The server command is named here once.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command() -> list[str]:
    return [sys.executable, "-m", "serving"]


def start_server(model_dir: Path, port: int, log: Path, workers: int = 2, **settings) -> subprocess.Popen:
    """The production server in the background, its output in `log`. settings: FASHION_SOFTMAX_* values."""
    env = {**os.environ, "FASHION_SOFTMAX_HOST": "127.0.0.1", "FASHION_SOFTMAX_PORT": str(port),
           "FASHION_SOFTMAX_MODEL_DIR": str(model_dir), "FASHION_SOFTMAX_WORKERS": str(workers)}  # fmt: skip
    env |= {f"FASHION_SOFTMAX_{key.upper()}": str(value) for key, value in settings.items()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a fresh metrics folder per server
    with open(log, "wb") as output:
        return subprocess.Popen(server_command(), cwd=ROOT, env=env, stdout=output, stderr=output)


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready in {seconds} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()  # graceful: in-flight requests finish
    process.wait(timeout=30)


def worker_pids(process: subprocess.Popen) -> set[int]:
    """The server's worker processes: the children of its main process."""
    path = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    return {int(pid) for pid in path.read_text().split()} if path.exists() else set()


@contextlib.contextmanager
def live_server(model_dir: Path, log: Path, workers: int = 2, **settings):
    """Yields the base URL once /ready answers 200; stops the server afterwards. settings: FASHION_SOFTMAX_*."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(model_dir, port, log, workers, **settings)
    try:
        wait_until_ready(url, process, log)
        yield url
    finally:
        stop(process)
