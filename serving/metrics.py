"""Prometheus metrics: requests by route and status, latency, images predicted.

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set, see serving/gunicorn.conf.py) every
worker writes its samples to that folder and /metrics adds them all up.
"""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()  # per app: tests build many apps in one process
        self.requests = Counter(
            "fashion_softmax_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "fashion_softmax_http_request_duration_seconds",
            "Time to answer a request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.images = Counter("fashion_softmax_images_predicted", "Images classified", registry=self.registry)
        self.reloads = Counter(
            "fashion_softmax_model_reloads", "New models tried, per worker", ["result"], registry=self.registry
        )

    def count_reload(self, result: str) -> None:
        """result: "ok" (swapped in) or "failed" (refused, the old model kept serving)."""
        self.reloads.labels(result).inc()

    def install(self, app: Flask) -> None:
        app.before_request(self._start)
        app.after_request(self._finish)

    def _start(self) -> None:
        g.metrics_start = time.perf_counter()

    def _finish(self, response):
        route = request.url_rule.rule if request.url_rule else "unmatched"  # bounded label values
        self.requests.labels(route, request.method, str(response.status_code)).inc()
        started = g.get("metrics_start")
        if started is not None:
            self.latency.labels(route).observe(time.perf_counter() - started)
        return response

    def exposition(self) -> tuple[bytes, str]:
        """The text format, summed over all gunicorn workers when in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
