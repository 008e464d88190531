"""gunicorn settings for the same app: the baseline of `make bench-serve` (bench/bench_serve.py).

    gunicorn -c bench/gunicorn_baseline.conf.py
Settings from the environment: FASHION_SOFTMAX_HOST (127.0.0.1), _PORT (8000), _WORKERS (2), _THREADS (1: sync
workers; more: gthread workers), _MODEL_DIR (artifacts); PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder).
"""

import os

host = os.environ.get("FASHION_SOFTMAX_HOST", "127.0.0.1")
port = os.environ.get("FASHION_SOFTMAX_PORT", "8000")
bind = [f"{host}:{port}"]
workers = int(os.environ.get("FASHION_SOFTMAX_WORKERS", "2"))
# 1: sync workers; > 1: gthread workers with keep-alive, for slow clients when no buffering proxy stands in front
threads = int(os.environ.get("FASHION_SOFTMAX_THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
keepalive = 5
backlog = 2048
timeout = 30
graceful_timeout = 10
accesslog = os.environ.get("FASHION_SOFTMAX_ACCESS_LOG") or None  # "-" logs every request to stdout
wsgi_app = "serving:create_app()"
control_socket_disable = True  # gunicorn >= 27 would otherwise open a socket under $HOME


def on_starting(server):
    """As `python -m serving` starts: one line and exit without tokens off loopback or without a usable model; a
    fresh metrics folder (PROMETHEUS_MULTIPROC_DIR) where every worker writes its samples and /metrics sums them."""
    from serving.server import check_before_start, prepare_metrics_dir

    check_before_start(os.environ)
    prepare_metrics_dir()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
