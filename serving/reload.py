"""Live model reload: every worker watches model.json and swaps in a newly published model.

A new model is loaded and checked off the request path (sha256, the same input and output
spec, one smoke inference), then swapped in by one reference assignment: a request holds the
Predictor it started with, so requests in flight finish on the old one. A broken or
incompatible model is refused, logged once, and the old one keeps serving. SIGHUP checks at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from serving.model import ModelLoadError, Predictor

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int] | None  # (inode, mtime ns, size) of model.json; None: no manifest


class LiveModel:
    """The Predictor being served, replaced when model.json changes and the new model passes its checks."""

    def __init__(self, model_dir: Path | str, threads: int = 1, on_reload: Callable[[str], None] | None = None):
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.on_reload = on_reload or (lambda result: None)  # called with "ok" or "failed"
        self.predictor: Predictor | None = None  # read once per request; swapped whole, never mutated
        self.loaded_at: str | None = None
        self.last_failure: dict | None = None  # {"at", "reason"} of the last refused model
        self.interval: float = 0.0  # seconds between checks; 0: not watching
        self._seen: Fingerprint = None  # the manifest last tried, loaded or refused
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one check at a time: the watcher, SIGHUP, tests

    def load(self) -> Predictor:
        """The first load (start-up): a missing or broken model raises ModelLoadError."""
        with self._lock:
            self._seen = self._fingerprint()
            self._install(Predictor.load(self.model_dir, threads=self.threads))
        return self.predictor

    def check(self) -> str | None:
        """Load the published model if model.json changed since the last try: "ok", "failed", or None."""
        with self._lock:
            fingerprint = self._fingerprint()
            if fingerprint == self._seen or fingerprint is None:
                return None  # nothing new (a manifest being replaced reappears by rename)
            self._seen = fingerprint
            try:
                candidate = Predictor.load(self.model_dir, threads=self.threads)
                if self.predictor is not None:
                    candidate.check_compatible(self.predictor)
            except ModelLoadError as error:
                self.last_failure = {"at": _now(), "reason": str(error)}
                current = self.predictor.version if self.predictor else "none"
                log.warning("model reload refused, still serving version %s: %s", current, error)
                self.on_reload("failed")
                return "failed"
            previous = self.predictor.version if self.predictor else "none"
            self._install(candidate)
            log.info("model reloaded: version %s replaces %s", candidate.version, previous)
            self.on_reload("ok")
            return "ok"

    def watch(self, interval: float) -> None:
        """Check every `interval` seconds, and at once after wake(), in a daemon thread of this process."""
        self.interval = interval
        threading.Thread(target=self._watch_loop, name="model-watcher", daemon=True).start()

    def wake(self) -> None:
        """Ask the watcher to check now (safe from a signal handler)."""
        self._wake.set()

    def status(self) -> dict:
        """What /metadata reports about reloading."""
        return {
            "watching": self.interval > 0,
            "interval_seconds": self.interval,
            "loaded_at": self.loaded_at,
            "last_failure": self.last_failure,
        }

    def _watch_loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.check()
            except Exception:  # a bug of ours must not stop the watching
                log.exception("model watcher: unexpected error")

    def _install(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.loaded_at = _now()

    def _fingerprint(self) -> Fingerprint:
        try:
            stat = (self.model_dir / "model.json").stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def reload_on_sighup(live: LiveModel) -> None:
    """In a worker: SIGHUP makes this process check for a new model at once (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: live.wake())


def forward_sighup_to_workers() -> None:
    """In the server's master: pass SIGHUP on to every worker process instead of restarting them.

    A restarted worker could only load what is on disk, broken or not; a worker that reloads in
    place keeps its current model when the new one is refused.
    """

    def forward(signum, frame):
        for worker in multiprocessing.active_children():
            os.kill(worker.pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, forward)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
