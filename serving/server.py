"""The production server: Granian running `create_app()` in worker processes, through its RSGI interface
(serving/rsgi.py: bodies read whole by the event loop, then the Flask app called). `python -m serving`.

Settings, each from the environment: FASHION_SOFTMAX_HOST (127.0.0.1), _PORT (8000), _WORKERS (2),
_MODEL_DIR (artifacts), _ACCESS_LOG (off; 1 logs every request), _TOKENS_FILE (none: no tokens asked
for), _ALLOW_UNAUTHENTICATED (off: 1 serves a non-loopback address without tokens); PROMETHEUS_MULTIPROC_DIR
(a fresh temporary folder). Why Granian, and why RSGI rather than its WSGI threads: bench/bench_serve.py
measures them beside gunicorn, and `make reliability` checks the server under faults and slow clients.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import tempfile
from pathlib import Path

from granian import Granian
from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
from granian.http import HTTP1Settings

from serving import tokens
from serving.model import ModelLoadError
from serving.repository import ModelRepository, VersionPolicy, forward_sighup_to_workers


def say(line: str) -> None:
    print(f"fashion-softmax: {line}", file=sys.stderr, flush=True)


def refuse(reason: str) -> None:
    """One line on stderr and exit 1: before any worker starts, never a traceback."""
    say(f"cannot start: {reason}")
    sys.exit(1)


def check_model(model_dir: str, policy: str) -> None:
    """Fail fast without a usable model or with a bad version policy."""
    try:
        ModelRepository(model_dir, VersionPolicy.parse(policy)).load()
    except (ModelLoadError, ValueError) as error:
        refuse(str(error))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_access(environ) -> None:
    """Secure by default: off the loopback interface, only with tokens, or when told in so many words to run open."""
    host, tokens_file = environ.get("FASHION_SOFTMAX_HOST", "127.0.0.1"), environ.get("FASHION_SOFTMAX_TOKENS_FILE")
    if tokens_file:
        try:
            found = tokens.read(Path(tokens_file))
        except tokens.TokenFileError as error:
            refuse(f"{error} (FASHION_SOFTMAX_TOKENS_FILE)")
        if not found:
            say(
                f"{tokens_file} has no token yet: every route but the probes answers 401 until one is added "
                f"(python -m serving.tokens add NAME --file {tokens_file})"
            )
    elif is_loopback(host):
        return
    elif environ.get("FASHION_SOFTMAX_ALLOW_UNAUTHENTICATED", "") in ("", "0"):
        refuse(f"{host} is not a loopback address and no tokens are configured: set FASHION_SOFTMAX_TOKENS_FILE "
               "(make one with python -m serving.tokens add NAME), or FASHION_SOFTMAX_ALLOW_UNAUTHENTICATED=1 "
               "to serve anyone who can reach the port")  # fmt: skip
    else:
        say(f"serving {host} without tokens (FASHION_SOFTMAX_ALLOW_UNAUTHENTICATED)")


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


def check_before_start(environ) -> None:
    """What every server of this app checks before a worker starts: who may reach it, and a usable model."""
    check_access(environ)
    check_model(
        environ.get("FASHION_SOFTMAX_MODEL_DIR", "artifacts"), environ.get("FASHION_SOFTMAX_VERSION_POLICY", "latest")
    )


def main(**replacing) -> None:
    check_before_start(os.environ)
    prepare_metrics_dir()
    build_server(**replacing).serve()
