"""The model versions a worker serves, and live reload: what is published is loaded, checked, swapped in.

The current version is the one artifacts/model.json names (an export publishes it, `make rollback`
names an older one); it answers every request that names no version. Beside it, the versions a policy
picks from the model repository (model_repository/<name>/<N>/, each a whole export) are loaded too,
as Triton's version_policy does: `latest` (1), `latest:N`, `all`, `specific:1,3`.
When model.json changes (a publication: an export or a rollback; SIGHUP asks too), the served set is
loaded again off the request path, each new version checked (sha256, the same input, output and labels
as the served model, one smoke inference; a version already loaded is kept as it is), then swapped in
whole by one reference assignment: a request keeps the Predictor it started with. A broken current
model is refused and the old set keeps serving; a broken older version is left unavailable.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from serving.errors import ServiceError
from serving.model import ModelLoadError, Predictor

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, int] | None  # (inode, mtime ns, size) of model.json; None: no manifest
READY, UNAVAILABLE = "READY", "UNAVAILABLE"  # Triton's and MLServer's words in the repository index


@dataclass(frozen=True)
class VersionPolicy:
    """Which repository versions to load beside the current one (Triton's version_policy)."""

    kind: str = "latest"  # "latest", "all" or "specific"
    count: int = 1  # latest: how many of the highest versions
    versions: tuple[int, ...] = ()  # specific: these

    @classmethod
    def parse(cls, text: str) -> VersionPolicy:
        """`latest`, `latest:N`, `all` or `specific:N,M,...`; ValueError naming the forms otherwise."""
        spelled = text.strip().lower().replace(" ", "")
        if spelled == "all":
            return cls("all")
        if match := re.fullmatch(r"latest(?::([1-9]\d*))?", spelled):
            return cls("latest", count=int(match.group(1) or 1))
        if match := re.fullmatch(r"specific:([1-9]\d*(?:,[1-9]\d*)*)", spelled):
            return cls("specific", versions=tuple(sorted({int(v) for v in match.group(1).split(",")})))
        raise ValueError(f"version policy {text!r}: use latest, latest:N, all or specific:N[,M...]")

    def pick(self, available: list[int]) -> set[int]:
        if self.kind == "all":
            return set(available)
        if self.kind == "latest":
            return set(sorted(available)[-self.count :])
        return set(self.versions) & set(available)

    def __str__(self) -> str:
        if self.kind == "latest":
            return f"latest:{self.count}"
        return "all" if self.kind == "all" else "specific:" + ",".join(map(str, self.versions))


@dataclass(frozen=True)
class Served:
    """What a worker serves at one moment; replaced whole, never changed."""

    current: Predictor  # answers requests that name no version
    versions: dict[int, Predictor]  # every loaded version by its repository number, the current one included
    unavailable: dict[int, str]  # versions in the repository that are not loaded, and why

    def predictor(self, version: int | None) -> Predictor:
        if version is None:
            return self.current
        found = self.versions.get(version)
        if found is None:
            reason = self.unavailable.get(version, "not in the model repository")
            loaded = ", ".join(map(str, sorted(self.versions)))
            raise ServiceError(
                "unknown_version",
                f"model {self.current.name!r} version {version} is not served ({reason}); served: {loaded}",
            )
        return found


class ModelRepository:
    """The served set of versions of the model in `model_dir`, reloaded when a new one is published."""

    def __init__(
        self,
        model_dir: Path | str,
        policy: VersionPolicy | None = None,
        threads: int = 1,
        on_reload: Callable[[str], None] | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.policy = policy or VersionPolicy()
        self.threads = threads
        self.on_reload = on_reload or (lambda result: None)  # called with "ok" or "failed"
        self.served: Served | None = None  # read once per request; swapped whole
        self.loaded_at: str | None = None
        self.last_failure: dict | None = None  # {"at", "reason"} of the last refused publication
        self.interval: float = 0.0  # seconds between checks; 0: not watching
        self._seen: Fingerprint | None = None  # what was last tried, loaded or refused
        self._wake = threading.Event()
        self._forced = False  # wake() asked for a load even if model.json did not change
        self._lock = threading.Lock()  # one check at a time: the watcher, SIGHUP, tests

    @property
    def predictor(self) -> Predictor | None:
        """The current version, or None before a model was loaded."""
        served = self.served
        return served.current if served else None

    def load(self) -> Served:
        """The first load (start-up): a missing or broken current model raises ModelLoadError."""
        with self._lock:
            self._seen = self._fingerprint()
            try:
                self._install(self._load_set(previous=None))
            except ModelLoadError as error:
                self.last_failure = {"at": _now(), "reason": str(error)}
                raise
        return self.served

    def check(self, force: bool = False) -> str | None:
        """Load what was published since the last try (`force`: the repository again, even if model.json did not
        change): "ok", "failed" (the old set kept), or None (nothing new)."""
        with self._lock:
            fingerprint = self._fingerprint()
            if fingerprint is None or (fingerprint == self._seen and not force):
                return None  # nothing new (a manifest being replaced reappears by rename)
            self._seen = fingerprint
            previous = self.served
            try:
                served = self._load_set(previous)
            except ModelLoadError as error:
                self.last_failure = {"at": _now(), "reason": str(error)}
                current = previous.current.version if previous else "none"
                log.warning("model reload refused, still serving version %s: %s", current, error)
                self.on_reload("failed")
                return "failed"
            self._install(served)
            old = previous.current.version if previous else "none"
            log.info("models loaded: current %s (was %s), versions %s", served.current.version, old,
                     sorted(served.versions))  # fmt: skip
            self.on_reload("ok")
            return "ok"

    def index(self) -> list[dict]:
        """Every version in the repository and its state, as Triton's and MLServer's repository index lists them."""
        served = self.served
        if served is None:
            return []
        rows = {number: {"state": READY, "reason": ""} for number in served.versions}
        rows |= {number: {"state": UNAVAILABLE, "reason": why} for number, why in served.unavailable.items()}
        return [{"name": served.current.name, "version": str(n), **rows[n]} for n in sorted(rows)]

    def watch(self, interval: float) -> None:
        """Check every `interval` seconds, and at once after wake(), in a daemon thread of this process."""
        self.interval = interval
        threading.Thread(target=self._watch_loop, name="model-watcher", daemon=True).start()

    def wake(self) -> None:
        """Ask the watcher to load the repository again now (safe from a signal handler)."""
        self._forced = True
        self._wake.set()

    def status(self) -> dict:
        """What /metadata reports about reloading and versions."""
        served = self.served
        return {
            "watching": self.interval > 0,
            "interval_seconds": self.interval,
            "loaded_at": self.loaded_at,
            "last_failure": self.last_failure,
            "version_policy": str(self.policy),
            "versions_loaded": sorted(served.versions) if served else [],
        }

    def _load_set(self, previous: Served | None) -> Served:
        """The current model (ModelLoadError if it is unusable) and the policy's versions beside it."""
        loaded = {p.sha256: p for p in previous.versions.values()} if previous else {}
        current = loaded.get(_manifest_sha256(self.model_dir))  # already loaded (a rollback to a served version)
        if current is None:
            current = Predictor.load(self.model_dir, threads=self.threads)
            if previous is not None:
                current.check_compatible(previous.current)
        versions, unavailable = {current.repository_version: current}, {}
        folder = self._repository_folder(current)
        available = _version_numbers(folder)
        wanted = self.policy.pick(available)
        for number in available:
            if number == current.repository_version:
                continue
            if number not in wanted:
                unavailable[number] = f"not in the version policy ({self.policy})"
                continue
            try:
                versions[number] = self._version(folder / str(number), previous, number, current)
            except ModelLoadError as error:
                unavailable[number] = f"cannot be loaded: {error}"
                log.warning("model version %s not loaded: %s", number, error)
        return Served(current, versions, unavailable)

    def _version(self, folder: Path, previous: Served | None, number: int, current: Predictor) -> Predictor:
        """A repository version: the one already loaded if its files did not change, else loaded and checked."""
        loaded = previous.versions.get(number) if previous else None
        if loaded is not None and loaded.sha256 == _manifest_sha256(folder):
            return loaded
        predictor = Predictor.load(folder, threads=self.threads)
        predictor.check_compatible(current)
        if predictor.repository_version != number:
            raise ModelLoadError(f"{folder}/model.json names version {predictor.repository_version}, not {number}")
        return predictor

    def _repository_folder(self, current: Predictor) -> Path | None:
        path = current.manifest.get("model_repository", {}).get("path")
        return self.model_dir / path if path else None

    def _install(self, served: Served) -> None:
        self.served = served
        self.loaded_at = _now()

    def _fingerprint(self) -> Fingerprint:
        return _stat(self.model_dir / "model.json")

    def _watch_loop(self) -> None:
        while True:
            self._wake.wait(self.interval)
            self._wake.clear()
            forced, self._forced = self._forced, False
            try:
                self.check(force=forced)
            except Exception:  # a bug of ours must not stop the watching
                log.exception("model watcher: unexpected error")


def _version_numbers(folder: Path | None) -> list[int]:
    """The repository's version folders (integer names, as Triton reads them), ascending."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(int(path.name) for path in folder.iterdir() if path.name.isdigit() and path.is_dir())


def _manifest_sha256(folder: Path) -> str | None:
    try:
        return json.loads((folder / "model.json").read_text()).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def reload_on_sighup(repository: ModelRepository) -> None:
    """In a worker: SIGHUP makes this process check for a new model at once (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: repository.wake())


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
