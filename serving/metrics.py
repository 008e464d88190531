"""Prometheus metrics and the request-id log line: requests by route and status and their latency (a WSGI
middleware around the Flask app), model reloads, and what the model sees: predictions per class, the novelty
score, images flagged as not garments, and drift (a worker's recent predictions against the training set).

Under the production server (PROMETHEUS_MULTIPROC_DIR set, see serving/server.py) every worker
writes its samples to that folder and /metrics adds them all up. Writing a sample there takes a lock and a
write to the worker's memory-mapped file, several per request: a worker gathers its increments and writes
each sample once per FLUSH_EVERY_S instead (SampleWriter): another worker's last FLUSH_EVERY_S of counts may be
missing from one /metrics answer (they are in the next), and a worker killed outright loses at most that much.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from bisect import bisect_left
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
FLUSH_EVERY_S = 0.05  # multiprocess mode: a worker writes its gathered increments to its sample file this often
log = logging.getLogger("serving.access")
ROUTE_KEY = "fashion_softmax.route"  # where the matched URL rule waits in the WSGI environ


def _note_route() -> None:
    """before_request: the rule that matched ("/predict", not the URL asked for), for the label."""
    asked = request._get_current_object()  # one look-up behind Flask's proxy
    asked.environ[ROUTE_KEY] = asked.url_rule.rule if asked.url_rule is not None else "unmatched"


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
        self._by_version: dict[int, tuple] = {}  # version -> its labelled samples
        self.writer = SampleWriter(gather=bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")))
        # labelled children (or their sample values), looked up once: label values are bounded (routes x methods x
        # statuses)
        self._requests_by_labels: dict[tuple[str, str, str], object] = {}
        self._latency_by_route: dict[str, Histogram] = {}

    def count_predictions(self, predictor: Predictor, outputs: Outputs) -> None:
        """One inference: its images, their classes, novelty and flags, labelled by the model repository version
        (a bounded label: the loaded versions); then the drift gauges, at most once per DRIFT_EVERY_S."""
        version = predictor.repository_version
        samples = self._by_version.get(version)
        if samples is None:
            samples = self._by_version[version] = (
                self.images.labels(str(version))._value,
                [self.predictions.labels(str(version), label)._value for label in predictor.labels],
                self.flagged.labels(str(version))._value,
                self.novelty.labels(str(version)),
            )
        images, per_class, flagged, novelty = samples
        classes = outputs.probabilities.argmax(axis=1)  # (N,) predicted class ids
        flags = ~outputs.in_distribution  # (N,) flagged
        increments = [(images, len(classes))]
        counts = np.bincount(classes, minlength=len(per_class)).tolist()
        increments += [(per_class[class_id], count) for class_id, count in enumerate(counts) if count]
        if flagged_count := int(np.count_nonzero(flags)):
            increments.append((flagged, flagged_count))
        increments += observations(novelty, outputs.novelty / predictor.novelty_threshold)
        self.writer.add(increments)
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
            counter = self._requests_by_labels[key] = self.requests.labels(*key)._value
        histogram = self._latency_by_route.get(route)
        if histogram is None:
            histogram = self._latency_by_route[route] = self.latency.labels(route)
        self.writer.add([(counter, 1), *observations(histogram, [seconds])])
        request_id = environ.get("HTTP_X_REQUEST_ID")  # set by the proxy (docker/proxy/nginx.conf)
        if request_id:  # with the worker process that answered, to follow a request across replicas and workers
            log.info("request %s: %s %s -> %s (worker %d)", request_id, method, environ.get("PATH_INFO"), status,
                     os.getpid())  # fmt: skip

    def exposition(self) -> tuple[bytes, str]:
        """The text format, summed over all worker processes when in multiprocess mode."""
        self.writer.flush()  # this worker's gathered increments; the others' are at most FLUSH_EVERY_S old
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def observations(histogram, values) -> list[tuple[object, float]]:
    """The increments histogram.observe(v) makes for every v in `values`: one per bucket and one for the sum.

    Each value counts in the first bucket whose bound it does not pass (the last bound is +Inf). prometheus_client
    has no bulk observe; a test checks that writing these equals one observe per value.
    """
    bounds, buckets = histogram._upper_bounds, histogram._buckets
    if len(values) == 1:
        value = float(values[0])
        return [(buckets[bisect_left(bounds, value)], 1), (histogram._sum, value)]
    values = np.asarray(values, dtype=np.float64)  # as observe adds each value to a float; sums float32 sooner too
    counts = np.bincount(np.asarray(bounds).searchsorted(values, side="left"), minlength=len(bounds)).tolist()
    sum_ = float(values.sum())
    return [*[(buckets[bucket], count) for bucket, count in enumerate(counts) if count], (histogram._sum, sum_)]


class SampleWriter:
    """Writes increments of prometheus_client sample values (a counter's, a histogram bucket's, its sum).

    In one process (gather=False) each is written at once. In multiprocess mode each write would take a lock
    and write the worker's memory-mapped sample file, several times per request: there a request only adds
    to a dict, and the first addition after a flush starts a timer that writes every gathered sample once,
    FLUSH_EVERY_S later. /metrics flushes its own worker first, and the process flushes at exit.
    """

    def __init__(self, gather: bool, every_s: float = FLUSH_EVERY_S):
        self.gather = gather
        self.every_s = every_s
        self._pending: dict[object, float] = {}  # sample value -> amount not yet written
        self._lock = threading.Lock()  # the flush timer's thread swaps the dict
        self._timer: threading.Timer | None = None
        if gather:
            atexit.register(self.flush)

    def add(self, increments: list[tuple[object, float]]) -> None:
        if not self.gather:
            for value, amount in increments:
                value.inc(amount)
            return
        with self._lock:
            pending = self._pending
            for value, amount in increments:
                pending[value] = pending.get(value, 0) + amount
            if self._timer is None:
                self._timer = threading.Timer(self.every_s, self.flush)
                self._timer.daemon = True  # never holds up an exit: the exit flushes
                self._timer.start()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending, self._timer = self._pending, {}, None
        for value, amount in pending.items():
            value.inc(amount)


class DriftWindow:
    """The last `capacity` images' predicted classes and flags, in a ring."""

    def __init__(self, capacity: int):
        self.classes = np.zeros(capacity, dtype=np.int64)
        self.flags = np.zeros(capacity, dtype=bool)
        self.size = 0  # filled slots
        self._next = 0  # where the next image goes

    def add(self, classes: np.ndarray, flags: np.ndarray) -> None:
        capacity, start = len(self.classes), self._next
        classes, flags = classes[-capacity:], flags[-capacity:]
        before_end = min(len(classes), capacity - start)  # these fill up to the ring's end, the rest from its start
        self.classes[start : start + before_end], self.flags[start : start + before_end] = (
            classes[:before_end], flags[:before_end]
        )  # fmt: skip
        wrapped = len(classes) - before_end
        self.classes[:wrapped], self.flags[:wrapped] = classes[before_end:], flags[before_end:]
        self._next = (start + len(classes)) % capacity
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
