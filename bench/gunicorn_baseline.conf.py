"""gunicorn settings of the service before Granian: the baseline of `make bench-serve` (bench/bench_serve.py).

    gunicorn -c bench/gunicorn_baseline.conf.py
Settings from the environment: FASHION_SOFTMAX_HOST (127.0.0.1), _PORT (8000), _WORKERS (2), _THREADS (1: sync
workers; more: gthread workers), _MODEL_DIR (artifacts); PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder).
"""

import os
import sys
import tempfile
from pathlib import Path

host = os.environ.get("FASHION_SOFTMAX_HOST", "127.0.0.1")
port = os.environ.get("FASHION_SOFTMAX_PORT", "8000")
bind = [f"{host}:{port}"]
workers = int(os.environ.get("FASHION_SOFTMAX_WORKERS", "2"))
# 1: sync workers, the fastest here (bench/bench_serve.py); > 1: gthread workers with keep-alive,
# for slow clients when no buffering proxy stands in front
threads = int(os.environ.get("FASHION_SOFTMAX_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
keepalive = 5
backlog = 2048
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("FASHION_SOFTMAX_ACCESS_LOG") or None  # "-" logs every request to stdout
wsgi_app = "serving:create_app()"
control_socket_disable = True  # gunicorn >= 27 would otherwise open a socket under $HOME

# Each worker writes its Prometheus samples here; /metrics sums them (serving/metrics.py).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fashion-softmax-metrics-"))


def on_starting(server):
    """Fail fast, in one line, if there is no usable model; clear samples of an earlier run."""
    from serving.model import ModelLoadError, Predictor

    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics_dir.mkdir(parents=True, exist_ok=True)  # /tmp may be a fresh tmpfs (read-only containers)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    model_dir = os.environ.get("FASHION_SOFTMAX_MODEL_DIR", "artifacts")
    try:
        Predictor.load(model_dir)
    except ModelLoadError as error:
        print(f"fashion-softmax: cannot start: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
