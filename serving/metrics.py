"""Prometheus metrics and the request-id log line: requests by route and status and their latency (a WSGI
middleware around the Flask app), model reloads, and what the model sees: predictions per class, the novelty
score, images flagged as not garments, and drift (a worker's recent predictions against the training set).

Under the production server (PROMETHEUS_MULTIPROC_DIR set, see serving/server.py) every worker
writes its samples to that folder and /metrics adds them all up.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

import numpy as np
from flask import Flask, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from serving.model import Outputs, Predictor

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# novelty / the model's threshold: the same scale for every model version; above 1 an image is flagged
NOVELTY_BUCKETS = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)
DRIFT_WINDOW = 1000  # a worker's most recent images, compared with the training set
DRIFT_EVERY_S = 1.0  # the drift gauges are computed at most this often per worker
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
        self.predictions = Counter(
            "fashion_softmax_predictions", "Images by predicted class", ["version", "class"], registry=self.registry
        )
        self.flagged = Counter(
            "fashion_softmax_images_flagged",
            "Images whose novelty passed the model's threshold (in_distribution false: not like a garment)",
            ["version"],
            registry=self.registry,
        )
        self.novelty = Histogram(
            "fashion_softmax_novelty_ratio",
            "Each image's novelty score divided by the model's threshold (above 1: flagged)",
            ["version"],
            buckets=NOVELTY_BUCKETS,
            registry=self.registry,
        )
        # one worker's window; "mostrecent": the value last written by any worker (a dead one's is soon outdated)
        self.drift_psi = Gauge(
            "fashion_softmax_drift_class_psi",
            f"Population stability index of the predicted classes of a worker's last {DRIFT_WINDOW} images "
            "against the training set's classes (0: the same; above 0.25: a large shift)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.drift_flagged = Gauge(
            "fashion_softmax_drift_flagged_share",
            f"Share of a worker's last {DRIFT_WINDOW} images flagged as not like a garment",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.drift_images = Gauge(
            "fashion_softmax_drift_window_images",
            "Images in the drift window (up to its size)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.window = DriftWindow(DRIFT_WINDOW)
        self._drift_at = 0.0  # time.monotonic() of the last drift computation
        self._by_version: dict[int, tuple] = {}  # version -> its labelled children
        # labelled children, looked up once: label values are bounded (routes x methods x statuses)
        self._requests_by_labels: dict[tuple[str, str, str], Counter] = {}
        self._latency_by_route: dict[str, Histogram] = {}

    def count_predictions(self, predictor: Predictor, outputs: Outputs) -> None:
        """One inference: its images, their classes, novelty and flags, labelled by the model repository version
        (a bounded label: the loaded versions); then the drift gauges, at most once per DRIFT_EVERY_S."""
        version = predictor.repository_version
        children = self._by_version.get(version)
        if children is None:
            children = self._by_version[version] = (
                self.images.labels(str(version)),
                [self.predictions.labels(str(version), label) for label in predictor.labels],
                self.flagged.labels(str(version)),
                self.novelty.labels(str(version)),
            )
        images, per_class, flagged, novelty = children
        classes = outputs.probabilities.argmax(axis=1)  # (N,) predicted class ids
        flags = ~outputs.in_distribution  # (N,) flagged
        images.inc(len(classes))
        for class_id, count in enumerate(np.bincount(classes, minlength=len(per_class)).tolist()):
            if count:
                per_class[class_id].inc(count)
        if flags.any():
            flagged.inc(int(flags.sum()))
        observe_all(novelty, outputs.novelty / predictor.novelty_threshold)
        self.window.add(classes, flags)
        now = time.monotonic()
        if now - self._drift_at >= DRIFT_EVERY_S:
            self._drift_at = now
            self.drift_psi.set(self.window.psi(predictor.class_shares))
            self.drift_flagged.set(self.window.flagged_share())
            self.drift_images.set(self.window.size)

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


def observe_all(histogram, values: np.ndarray) -> None:
    """histogram.observe(v) for every v, one increment per bucket instead of per value.

    prometheus_client has no bulk observe; this writes what observe writes (each value into the first bucket
    whose bound it does not pass, and the sum) through the same per-bucket values. A test checks that the
    exposition equals one observe per value.
    """
    if len(values) == 1:
        histogram.observe(float(values[0]))
        return
    bounds = np.asarray(histogram._upper_bounds)  # finite bounds, then +Inf
    for bucket, count in enumerate(np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))):
        if count:
            histogram._buckets[bucket].inc(int(count))
    histogram._sum.inc(float(values.sum(dtype=np.float64)))  # as observe adds each value to a float


class DriftWindow:
    """The last `capacity` images' predicted classes and flags, in a ring."""

    def __init__(self, capacity: int):
        self.classes = np.zeros(capacity, dtype=np.int64)
        self.flags = np.zeros(capacity, dtype=bool)
        self.size = 0  # filled slots
        self._next = 0  # where the next image goes

    def add(self, classes: np.ndarray, flags: np.ndarray) -> None:
        capacity = len(self.classes)
        classes, flags = classes[-capacity:], flags[-capacity:]
        slots = (self._next + np.arange(len(classes))) % capacity
        self.classes[slots], self.flags[slots] = classes, flags
        self._next = (self._next + len(classes)) % capacity
        self.size = min(capacity, self.size + len(classes))

    def psi(self, expected: np.ndarray) -> float:
        """Population stability index sum((p - q) ln(p / q)) of the window's classes p against `expected` q.

        Each class gets half an image more (additive smoothing), so a class never seen is finite.
        """
        if self.size == 0:
            return 0.0
        counts = np.bincount(self.classes[: self.size], minlength=len(expected)) + 0.5
        observed = counts / counts.sum()
        return float(np.sum((observed - expected) * np.log(observed / expected)))

    def flagged_share(self) -> float:
        return float(self.flags[: self.size].mean()) if self.size else 0.0
