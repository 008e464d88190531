"""A peer server of `make bench-peers`: its own virtual environment under .peers/<name>/, installed on first use
from its pinned requirements (bench/peers/requirements/<name>.txt) within a time limit, then its server script
started on 127.0.0.1 in a process group of its own, waited for, and stopped with everything it spawned.

    python = ensure_environment("mlserver", limit_s=900)      # PeerUnavailable: why it cannot be installed
    pythons = ensure_environments(["mlserver", "kserve"], limit_s=900)   # several at once: Path or PeerUnavailable
    with PeerProcess([python, "-m", "bench.peers.mlserver_peer", ...], ready_url, workdir, limit_s=180):
        ...

A peer that cannot be installed or started raises PeerUnavailable with the reason: the benchmark reports it
and goes on without that peer.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from harness import ROOT

ENVIRONMENTS = ROOT / ".peers"
REQUIREMENTS = Path(__file__).resolve().parent / "requirements"
STAMP = ".requirements-sha256"  # in the environment: the requirements it was installed from


class PeerUnavailable(Exception):
    """The peer cannot be installed or started; the message says why."""


def ensure_environment(name: str, limit_s: float, home: Path | None = None) -> Path:
    """The Python of the peer's virtual environment (in home, else .peers/), installed (again) when its
    requirements file changed."""
    requirements = REQUIREMENTS / f"{name}.txt"
    venv = (home or ENVIRONMENTS) / name
    python = venv / "bin" / "python"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    with contextlib.suppress(OSError):
        if (venv / STAMP).read_text() == digest and python.exists():
            return python
    shutil.rmtree(venv, ignore_errors=True)
    deadline = time.monotonic() + limit_s
    if limit_s <= 0:
        raise PeerUnavailable("not installed: no time left for it")
    # --no-compile: byte-compiling every module of these large trees is most of an install's CPU time
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    steps = [[sys.executable, "-m", "venv", str(venv)], [*pip, "-r", str(requirements)]]
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired as error:
            shutil.rmtree(venv, ignore_errors=True)
            raise PeerUnavailable(f"not installed within {limit_s:.0f} s") from error
        if done.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            raise PeerUnavailable(f"install failed: {last_line(done.stderr or done.stdout)}")
    (venv / STAMP).write_text(digest)
    return python


def ensure_environments(names: list[str], limit_s: float, home: Path | None = None, at_once: int = 3) -> dict:
    """Several environments installed side by side (the downloads overlap), all within limit_s: name -> its
    Python or the PeerUnavailable that says why not."""
    deadline = time.monotonic() + limit_s

    def one(name: str) -> Path | PeerUnavailable:
        try:
            return ensure_environment(name, deadline - time.monotonic(), home)
        except PeerUnavailable as error:
            return error

    with ThreadPoolExecutor(max_workers=at_once) as pool:
        return dict(zip(names, pool.map(one, names), strict=True))


def last_line(text: str) -> str:
    """What a tool's output says went wrong: its last line naming an error, else its last non-empty line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|exception|failed", line, re.IGNORECASE)]
    return (errors or lines or ["(no output)"])[-1]


class PeerProcess:
    """A server command in its own process group, its output in workdir/server.log; ready when ready_url says 200."""

    def __init__(self, command: list[str], ready_url: str, workdir: Path, limit_s: float, grace_s: float = 30):
        self.command, self.ready_url, self.workdir = command, ready_url, workdir
        self.limit_s, self.grace_s = limit_s, grace_s  # to become ready; to stop after SIGTERM
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the peer scripts import bench.peers
        self.log = workdir / "server.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> PeerProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as output:
            self.process = subprocess.Popen(self.command, cwd=self.workdir, env=self.env, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.limit_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PeerUnavailable(f"exited with {self.process.returncode}: {last_line(self.log.read_text())}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.ready_url, timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise PeerUnavailable(f"not ready within {self.limit_s:.0f} s: {last_line(self.log.read_text())}")

    def stop(self) -> None:
        """SIGTERM to the whole group (the server and every process it spawned), SIGKILL to what is left after
        grace_s."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group's id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        while (self.process.poll() is None or group_alive(group)) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_alive(group) and time.monotonic() < deadline:  # killed orphans linger until init reaps them
            time.sleep(0.1)


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
