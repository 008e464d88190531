"""The production server (`python -m serving`, as `make serve` runs it) on a free 127.0.0.1 port, watched
from outside: its workers, their memory, its own request count. For benchmarks and real-server tests.

    with ProductionServer(model_dir, log) as server:
        server.url, server.worker_pids(), rss_kib(pid), server.requests_counted("/predict")
    with ProductionServer(model_dir, log, with_token=True) as server:    # started with a token file, as deployed
        server.auth  # {"Authorization": "Bearer ..."}: what every request but the probes needs

The server command is named once, in `server_command()`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
REQUESTS_COUNTER = "fashion_softmax_http_requests"  # serving/metrics.py; the parser drops "_total"


def server_command() -> list[str]:
    """What `make serve` runs: the one line to change when the production server changes."""
    return [sys.executable, "-m", "serving"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, port: int, log: Path, workers: int = 2, **settings) -> subprocess.Popen:
    """The production server in the background, its output in `log`. settings: FASHION_SOFTMAX_* values."""
    env = {**os.environ, "FASHION_SOFTMAX_HOST": "127.0.0.1", "FASHION_SOFTMAX_PORT": str(port),
           "FASHION_SOFTMAX_MODEL_DIR": str(model_dir), "FASHION_SOFTMAX_WORKERS": str(workers)}  # fmt: skip
    env |= {f"FASHION_SOFTMAX_{key.upper()}": str(value) for key, value in settings.items()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # a fresh metrics folder per server
    with open(log, "wb") as output:
        return subprocess.Popen(server_command(), cwd=ROOT, env=env, stdout=output, stderr=output)


def wait_until_ready(url: str, process: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server was not ready in {seconds} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (graceful: in-flight requests finish), then SIGKILL to the workers and the main process."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        for pid in [*worker_pids(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)


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


class ProductionServer:
    def __init__(self, model_dir: Path, log: Path, workers: int = 2, start_s: float = 90, with_token: bool = False):
        self.model_dir, self.log, self.workers, self.start_s = model_dir, log, workers, start_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.settings, self.auth = {}, {}
        if with_token:  # a token file beside the log, with one token: the server's and the client's halves
            from serving import tokens  # only here: the benchmarks of other servers need none of serving

            self.settings["tokens_file"] = log.with_name("tokens")
            self.auth = {"Authorization": f"Bearer {tokens.add(self.settings['tokens_file'], 'bench')}"}

    def __enter__(self) -> ProductionServer:
        self.process = start_server(self.model_dir, self.port, self.log, self.workers, **self.settings)
        try:
            self.wait_healthy(self.start_s)
        except BaseException:
            stop(self.process)
            raise
        return self

    def __exit__(self, *exc) -> None:
        stop(self.process)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return sorted(worker_pids(self.process.pid))

    def wait_healthy(self, seconds: float, gone: int | None = None) -> None:
        """Until /ready answers 200 and exactly `workers` workers run, none of them `gone` (a killed worker:
        its replacement has started; right after SIGKILL it may still be listed, dying)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{self.url}/ready", timeout=2).status_code == 200
                workers = self.worker_pids()
                if ready and len(workers) == self.workers and gone not in workers:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready with {self.workers} workers in {seconds} s")

    def requests_counted(self, route: str | None = None, status: str = "") -> int:
        """The server's own count of answered requests, all workers (dead ones too); one route or all,
        statuses starting with `status` ("5": server errors) or all.

        This scrape is itself counted only after it is answered, so it is not in its own figure.
        """
        text = requests.get(f"{self.url}/metrics", headers=self.auth, timeout=10).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            if family.name == REQUESTS_COUNTER:
                total += sum(
                    sample.value
                    for sample in family.samples
                    if sample.name.endswith("_total")
                    and (route is None or sample.labels.get("route") == route)
                    and sample.labels.get("status", "").startswith(status)
                )
        return int(total)
