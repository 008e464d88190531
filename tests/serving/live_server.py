"""Our service as `make serve` runs it (`python -m serving`: Granian), on a free port of 127.0.0.1,
for tests over real HTTP. Starting, waiting and stopping live in bench/production_server.py, shared
with the benchmarks.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from bench.production_server import ROOT, free_port, start_server, stop, wait_until_ready, worker_pids

__all__ = ["ROOT", "free_port", "live_server", "start_server", "stop", "wait_until_ready", "worker_pids"]


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
