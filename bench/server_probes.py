"""How a running server behaves beyond throughput: keep-alive, stalled clients, a worker's death.

Used by bench/bench_serve.py to compare WSGI servers for the same app, side by side. Every probe is
bounded in time and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import ExitStack

import requests

from bench.production_server import worker_pids


def keeps_alive(port: int, body: bytes) -> bool:
    """Two requests on one connection: does the server keep it open after the first answer?"""
    request = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body  # fmt: skip
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        answers = 0
        for _ in range(2):
            try:
                connection.sendall(request)
                answer = read_response(connection)
                if answer is None or not answer[0].startswith(b"HTTP/1.1 200"):
                    break
                answers += 1
            except OSError:
                break
    return answers == 2


def read_response(connection: socket.socket) -> tuple[bytes, bytes] | None:
    """One answer from the connection, as (head, body) by its Content-Length; None if it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0
    )
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return head, rest


def beside_stalled_clients(port: int, body: bytes, stalled: int = 8, wait_s: float = 5) -> float | None:
    """Seconds an ordinary request takes while `stalled` clients have sent headers and no body; None if
    it got no answer within wait_s (the server is frozen)."""
    with ExitStack() as stack:
        for _ in range(stalled):
            connection = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                               b"Content-Length: 10000\r\n\r\n")  # fmt: skip
        time.sleep(0.5)  # let the server hand them to its workers
        started = time.monotonic()
        try:
            response = requests.post(f"http://127.0.0.1:{port}/predict", data=body,
                                     headers={"Content-Type": "image/png"}, timeout=wait_s)  # fmt: skip
        except requests.RequestException:
            return None
        return time.monotonic() - started if response.status_code == 200 else None


def worker_death(master_pid: int, wrk_command: list[str], kill_after_s: float = 2) -> dict:
    """SIGKILL one worker during a wrk run: the requests that failed, and whether a new worker came."""
    before = worker_pids(master_pid)
    load = subprocess.Popen(wrk_command, stdout=subprocess.PIPE, text=True)
    time.sleep(kill_after_s)
    os.kill(min(before), signal.SIGKILL)
    output, _ = load.communicate(timeout=120)
    deadline = time.monotonic() + 15
    while len(worker_pids(master_pid)) < len(before) and time.monotonic() < deadline:
        time.sleep(0.2)
    after = worker_pids(master_pid)
    return {"output": output, "replaced": len(after) == len(before) and after != before}
