"""The production server with its workers, started on a free 127.0.0.1 port, watched from outside.

    with ProductionServer(model_dir, log) as server:
        server.url, server.worker_pids(), server.rss_kib(pid), server.requests_counted()

The server command is named once, in `server_command()`. Workers are found as the server's child
processes in /proc, which holds for gunicorn (arbiter -> workers) and Granian (main -> worker processes).
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
HELPERS = ("resource_tracker", "semaphore_tracker", "forkserver")  # multiprocessing's own children: not workers


def server_command() -> list[str]:
    """What `make serve` runs: the one line to change when the production server changes."""
    return [str(Path(sys.executable).with_name("gunicorn")), "-c", "serving/gunicorn.conf.py"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """Live child processes of pid (any server), by the parent field of /proc/*/stat."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            text = stat.read_text()
            # "pid (comm) state ppid ...": comm may hold spaces, so split after its closing parenthesis
            state, ppid = text[text.rindex(")") + 2 :].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(stat.parent.name))
    return sorted(found)


def cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


def rss_kib(pid: int) -> int:
    """Resident set size of one process, VmRSS from /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class ProductionServer:
    def __init__(self, model_dir: Path, log: Path, workers: int = 2, start_s: float = 90):
        self.model_dir, self.log, self.workers, self.start_s = model_dir, log, workers, start_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> ProductionServer:
        settings = {"HOST": "127.0.0.1", "PORT": self.port, "MODEL_DIR": self.model_dir, "WORKERS": self.workers}
        env = os.environ | {f"FASHION_SOFTMAX_{name}": str(value) for name, value in settings.items()}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the server makes a fresh one
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(server_command(), cwd=ROOT, env=env, stdout=output, stderr=output)
        try:
            self.wait_healthy(self.start_s)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (graceful), then SIGKILL to the whole group of processes if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            for pid in [*self.worker_pids(), self.process.pid]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return [pid for pid in children(self.process.pid) if not any(name in cmdline(pid) for name in HELPERS)]

    def wait_healthy(self, seconds: float) -> None:
        """Until /ready answers 200 and exactly `workers` workers run (a replaced one has started)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log.read_text()}")
            with contextlib.suppress(requests.RequestException):
                ready = requests.get(f"{self.url}/ready", timeout=2).status_code == 200
                if ready and len(self.worker_pids()) == self.workers:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the server was not ready with {self.workers} workers in {seconds} s")

    def requests_counted(self, route: str | None = None, status: str = "") -> int:
        """The server's own count of answered requests, all workers (dead ones too); one route or all,
        statuses starting with `status` ("5": server errors) or all.

        This scrape is itself counted only after it is answered, so it is not in its own figure.
        """
        text = requests.get(f"{self.url}/metrics", timeout=10).text
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
