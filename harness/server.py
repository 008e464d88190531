"""The production server (`python -m serving`, as `make serve` runs it) on a free 127.0.0.1 port, started and
watched from outside: its workers, their memory, its log, its own counts. The one way tests, benchmarks
and `make reliability` start a server.

    with ProductionServer(model_dir, log, workers=2, body_timeout=2) as server:   # settings: FASHION_SOFTMAX_*
        server.url, server.worker_pids(), server.requests_counted("/predict"), server.wait_for_log("ready")

`command=` runs another server around the same app with the same settings (the benchmark's candidates).

    with ProductionServer(model_dir, log, with_token=True) as server:    # started with a token file, as deployed
        server.auth  # {"Authorization": "Bearer ..."}: what every request but the probes needs
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from harness import ROOT, free_port

REQUESTS_COUNTER = "fashion_softmax_http_requests"  # serving/metrics.py; the parser drops "_total"


def server_command() -> list[str]:
    """What `make serve` runs: the one line to change when the production server changes."""
    return [sys.executable, "-m", "serving"]


def worker_pids(main_pid: int) -> set[int]:
    """The worker processes: the live children of the server's main process (Granian and gunicorn alike).

    A killed worker stays a child, as a zombie, until the main process reaps it: it does not count.
    """
    path = Path(f"/proc/{main_pid}/task/{main_pid}/children")
    with contextlib.suppress(OSError):
        return {pid for pid in map(int, path.read_text().split()) if _alive(pid)}
    return set()


def _alive(pid: int) -> bool:
    """Not a zombie (Z) or dead (X): the state is the field after the parenthesised command in /proc/PID/stat."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] not in ("Z", "X")
    return False


def rss_kib(pid: int) -> int:
    """Resident set size of one process, VmRSS from /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def metric_samples(url: str, family: str, headers: dict | None = None) -> list[tuple[dict, float]]:
    """A counter's samples in the server's /metrics (all workers, dead ones too), from one scrape: (labels,
    value) pairs. family: the name without "_total" (prometheus_client's parser drops it); headers: a token.

    It waits first for every worker to have written the counts it gathers (serving/metrics.py, SampleWriter).
    """
    from serving.metrics import FLUSH_EVERY_S  # only here: the benchmarks of other servers need none of serving

    time.sleep(3 * FLUSH_EVERY_S)  # a worker writes its gathered counts within FLUSH_EVERY_S of counting them
    text = requests.get(f"{url}/metrics", headers=headers, timeout=10).text
    return [
        (sample.labels, sample.value)
        for found in text_string_to_metric_families(text)
        if found.name == family
        for sample in found.samples
        if sample.name.endswith("_total")
    ]


class ServerExited(RuntimeError):
    """The server process ended while it was expected to serve; `returncode` and its `output` say how."""

    def __init__(self, returncode: int, output: str):
        super().__init__(f"the server exited with {returncode}:\n{output}")
        self.returncode, self.output = returncode, output


class ProductionServer:
    def __init__(
        self,
        model_dir: Path,
        log: Path,
        workers: int = 2,
        *,
        command: list[str] | None = None,
        ready_path: str | None = "/ready",
        start_s: float = 90,
        with_token: bool = False,
        metrics_dir: Path | None = None,
        **settings,
    ):
        """settings: FASHION_SOFTMAX_* values by lower-case name (body_timeout=2). ready_path: the route that
        answers 200 once the server serves; None: any HTTP answer will do (a server without one). with_token:
        started with a token file beside the log holding one token, which `auth` carries. metrics_dir: the
        workers' metric sample files go there (PROMETHEUS_MULTIPROC_DIR), to be read after the server stops;
        by default a fresh folder of the server's own."""
        self.model_dir, self.log, self.workers, self.start_s = Path(model_dir), Path(log), workers, start_s
        self.command = command or server_command()
        self.ready_path, self.settings, self.metrics_dir = ready_path, settings, metrics_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.auth: dict[str, str] = {}
        if with_token:
            from serving import tokens  # only here: the benchmarks of other servers need none of serving

            self.settings["tokens_file"] = self.log.with_name(f"{self.log.stem}.tokens")
            self.auth = {"Authorization": f"Bearer {tokens.add(self.settings['tokens_file'], 'bench')}"}

    def _start(self) -> subprocess.Popen:
        """The server in the background, its output in `log`; see __enter__ for waiting until it serves."""
        settings = {"host": "127.0.0.1", "port": self.port, "model_dir": self.model_dir, "workers": self.workers}
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # its output reaches the log as it is written
        env |= {f"FASHION_SOFTMAX_{key.upper()}": str(value) for key, value in (settings | self.settings).items()}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a fresh metrics folder per server
        if self.metrics_dir is not None:
            env["PROMETHEUS_MULTIPROC_DIR"] = str(self.metrics_dir)
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=output, stderr=output)
        return self.process

    def __enter__(self) -> ProductionServer:
        self._start()
        try:
            self.wait_healthy(self.start_s)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (graceful: in-flight requests finish), then SIGKILL to the workers and the main process."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in [*worker_pids(process.pid), process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return sorted(worker_pids(self.process.pid))

    def serving(self) -> bool:
        """One request to the ready route (or anywhere, without one): does it answer as a ready server does?"""
        try:
            response = requests.get(f"{self.url}{self.ready_path or '/'}", timeout=2)
        except requests.RequestException:
            return False
        return self.ready_path is None or response.status_code == 200

    def wait_healthy(self, seconds: float, gone: int | None = None) -> None:
        """Until the server serves and exactly `workers` workers run, none of them `gone` (a killed worker:
        its replacement has started; right after SIGKILL it may still be listed, dying)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerExited(self.process.returncode, self.log_text())
            workers = self.worker_pids()
            if len(workers) == self.workers and gone not in workers and self.serving():
                return
            time.sleep(0.2)
        raise RuntimeError(f"the server was not serving with {self.workers} workers in {seconds} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_log(self, pattern: str, seconds: float = 10) -> re.Match:
        """The first match of the regular expression in the server's output, once it is there."""
        deadline = time.monotonic() + seconds
        while True:
            found = re.search(pattern, self.log_text(), re.MULTILINE)
            if found or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not found:
            raise AssertionError(f"no {pattern!r} in the server's output within {seconds} s:\n{self.log_text()}")
        return found

    def requests_counted(self, route: str | None = None, status: str = "", method: str | None = None) -> int:
        """The server's own count of answered requests, all workers (dead ones too); one route or all,
        statuses starting with `status` ("5": server errors) or all, one method or all.

        This scrape is itself counted only after it is answered, so it is not in its own figure.
        """
        return int(
            sum(
                value
                for labels, value in metric_samples(self.url, REQUESTS_COUNTER, self.auth)
                if (route is None or labels.get("route") == route)
                and labels.get("status", "").startswith(status)
                and (method is None or labels.get("method") == method)
            )
        )
