"""Prometheus metrics (requests by route and status, latency, images predicted, model reloads) and the
request-id log line, recorded by a WSGI middleware around the Flask app.

Under the production server (PROMETHEUS_MULTIPROC_DIR set, see serving/server.py) every worker
writes its samples to that folder and /metrics adds them all up.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
log = logging.getLogger("serving.access")
ROUTE_KEY = "fashion_softmax.route"  # where the matched URL rule waits in the WSGI environ


def _note_route() -> None:
    """before_request: the rule that matched ("/predict", not the URL asked for), for the label."""
    rule = request.url_rule
    request.environ[ROUTE_KEY] = rule.rule if rule is not None else "unmatched"


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
        self.images = Counter(
            "fashion_softmax_images_predicted", "Images classified", ["version"], registry=self.registry
        )
        self.reloads = Counter(
            "fashion_softmax_model_reloads", "New models tried, per worker", ["result"], registry=self.registry
        )
        # labelled children, looked up once: label values are bounded (routes x methods x statuses)
        self._requests_by_labels: dict[tuple[str, str, str], Counter] = {}
        self._latency_by_route: dict[str, Histogram] = {}
        self._images_by_version: dict[int, Counter] = {}

    def count_images(self, version: int, count: int) -> None:
        """`count` images classified by model repository version `version` (a bounded label: the loaded ones)."""
        counter = self._images_by_version.get(version)
        if counter is None:
            counter = self._images_by_version[version] = self.images.labels(str(version))
        counter.inc(count)

    def count_reload(self, result: str) -> None:
        """result: "ok" (swapped in) or "failed" (refused, the old model kept serving)."""
        self.reloads.labels(result).inc()

    def install(self, app: Flask) -> None:
        """Wrap the WSGI app (timing, counting, logging); one hook notes the matched route for it."""
        inner = app.wsgi_app
        app.before_request(_note_route)

        def measured(environ, start_response):
            started = time.perf_counter()
            status = []

            def record_status(code, headers, exc_info=None):
                status.append(code)
                return start_response(code, headers, exc_info)

            response = inner(environ, record_status)
            self._record(environ, status[0][:3] if status else "500", time.perf_counter() - started)
            return response

        app.wsgi_app = measured

    def _record(self, environ: dict, status: str, seconds: float) -> None:
        route = environ.get(ROUTE_KEY, "unmatched")  # bounded label values
        method = environ["REQUEST_METHOD"]
        key = (route, method, status)
        counter = self._requests_by_labels.get(key)
        if counter is None:
            counter = self._requests_by_labels[key] = self.requests.labels(*key)
        counter.inc()
        histogram = self._latency_by_route.get(route)
        if histogram is None:
            histogram = self._latency_by_route[route] = self.latency.labels(route)
        histogram.observe(seconds)
        request_id = environ.get("HTTP_X_REQUEST_ID")  # set by the proxy (docker/proxy/nginx.conf)
        if request_id:  # with the worker process that answered, to follow a request across replicas and workers
            log.info("request %s: %s %s -> %s (worker %d)", request_id, method, environ.get("PATH_INFO"), status,
                     os.getpid())  # fmt: skip

    def exposition(self) -> tuple[bytes, str]:
        """The text format, summed over all worker processes when in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
