"""The production server: Granian running `create_app()` in worker processes, through its RSGI interface
(serving/rsgi.py: bodies read whole by the event loop, then the Flask app called). `python -m serving`.

Settings, each from the environment: FASHION_SOFTMAX_HOST (127.0.0.1), _PORT (8000), _WORKERS (2),
_MODEL_DIR (artifacts), _ACCESS_LOG (off; 1 logs every request); PROMETHEUS_MULTIPROC_DIR (a fresh
temporary folder). Why Granian, and why RSGI rather than its WSGI threads: bench/bench_serve.py measures
them beside gunicorn, and `make reliability` checks the server under faults and slow clients.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
from granian.http import HTTP1Settings

from serving.model import ModelLoadError
from serving.repository import ModelRepository, VersionPolicy, forward_sighup_to_workers


def check_model(model_dir: str, policy: str) -> None:
    """Fail fast, in one line and before any worker starts, without a usable model or with a bad policy."""
    try:
        ModelRepository(model_dir, VersionPolicy.parse(policy)).load()
    except (ModelLoadError, ValueError) as error:
        print(f"fashion-softmax: cannot start: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def prepare_metrics_dir() -> None:
    """Every worker writes its Prometheus samples here and /metrics adds them up (serving/metrics.py).

    A dead worker's files stay: its counts remain in the sums, which is what counters must do. Only
    live gauges would need gunicorn's mark_process_dead, and this service has none.
    """
    folder = Path(os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fashion-softmax-")))
    folder.mkdir(parents=True, exist_ok=True)  # /tmp may be a fresh tmpfs (read-only containers)
    for stale in folder.glob("*.db"):  # samples of an earlier run would be added to this one's
        stale.unlink()


def build_server(**replacing) -> Granian:
    """Granian as `make serve` runs it; `replacing`: Granian arguments to use instead (the benchmark's variants)."""
    environ = os.environ
    settings = dict(
        target="serving.rsgi:create_rsgi_app",
        factory=True,  # each worker calls create_app() once: one model per worker process
        address=environ.get("FASHION_SOFTMAX_HOST", "127.0.0.1"),
        port=int(environ.get("FASHION_SOFTMAX_PORT", "8000")),
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,  # each worker's event loop, which reads the bodies and runs the app
        http=HTTPModes.http1,
        websockets=False,
        workers=int(environ.get("FASHION_SOFTMAX_WORKERS", "2")),
        runtime_mode=RuntimeModes.st,  # one I/O thread per worker: the Python side is the bottleneck
        http1_settings=HTTP1Settings(header_read_timeout=10_000, keep_alive=True),  # ms for the headers
        backlog=2048,
        # requests in flight per worker, bodies still arriving included (more wait their turn): high, so that
        # many stalled clients cannot take every place (each is given up after BODY_TIMEOUT); what arriving
        # bodies may hold in memory is what clients actually send, at most MAX_CONTENT_LENGTH each
        backpressure=1024,
        respawn_failed_workers=True,  # a worker that dies (OOM, SIGKILL) is replaced
        respawn_interval=0.5,
        workers_kill_timeout=10,  # graceful shutdown: in-flight requests get 10 s to finish
        log_access=environ.get("FASHION_SOFTMAX_ACCESS_LOG", "") not in ("", "0"),
    )
    server = Granian(**(settings | replacing))
    server.on_startup(forward_sighup_to_workers)  # SIGHUP: workers reload the model in place, none restarts
    return server


def main(**replacing) -> None:
    environ = os.environ
    check_model(
        environ.get("FASHION_SOFTMAX_MODEL_DIR", "artifacts"), environ.get("FASHION_SOFTMAX_VERSION_POLICY", "latest")
    )
    prepare_metrics_dir()
    build_server(**replacing).serve()
