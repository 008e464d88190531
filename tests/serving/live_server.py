"""Our service as `make serve` runs it, on a free port of 127.0.0.1, for tests over real HTTP.

The server command is named here once: switching WSGI servers (gunicorn -> Granian) is a one-place edit.
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
    return [str(Path(sys.executable).with_name("gunicorn")), "-c", "serving/gunicorn.conf.py"]


@contextlib.contextmanager
def live_server(model_dir: Path, log: Path, workers: int = 2, **settings):
    """Yields the base URL once /ready answers 200; stops the server afterwards. settings: FASHION_SOFTMAX_*."""
    port = free_port()
    env = {**os.environ, "FASHION_SOFTMAX_HOST": "127.0.0.1", "FASHION_SOFTMAX_PORT": str(port),
           "FASHION_SOFTMAX_MODEL_DIR": str(model_dir), "FASHION_SOFTMAX_WORKERS": str(workers)}  # fmt: skip
    env |= {f"FASHION_SOFTMAX_{key.upper()}": str(value) for key, value in settings.items()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as output:
        process = subprocess.Popen(server_command(), cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the server was not ready in 60 s:\n{log.read_text()}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
