"""Slow clients: connections that send their headers, then trickle the body, while one client times normal requests.

    result = trickle_while_timing(url, png_bytes, connections=50, seconds=30, byte_every_s=2)

Each trickling connection announces a body larger than it will ever send (Content-Length), so a
server that waits for whole bodies waits on it; it is closed at the end. Every socket has a
timeout: against a server that stops answering, this returns on time with the failures counted.
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from urllib.parse import urlsplit

import requests

ANNOUNCED_BODY = 4096  # bytes promised in Content-Length; at 1 byte per 2 s, 15 of them arrive in 30 s


def trickle(host: str, port: int, stop: threading.Event, byte_every_s: float, outcome: list[str]) -> None:
    """One slow client; appends "held" (open to the end) or why it ended early (the server may close it)."""
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(
                f"POST /predict HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: image/png\r\n"
                f"Content-Length: {ANNOUNCED_BODY}\r\n\r\n".encode()
            )
            while not stop.wait(byte_every_s):
                conn.sendall(b"\x89")
            outcome.append("held")
    except OSError as error:
        outcome.append(type(error).__name__)


def trickle_while_timing(
    url: str, body: bytes, connections: int, seconds: float, byte_every_s: float, headers: dict | None = None
) -> dict:
    """Opens the slow connections, then for `seconds` sends `body` to /predict one request at a time and times it;
    headers: added to the timed requests (a token)."""
    parts = urlsplit(url)
    stop, outcomes = threading.Event(), []
    slow = [
        threading.Thread(target=trickle, args=(parts.hostname, parts.port, stop, byte_every_s, outcomes), daemon=True)
        for _ in range(connections)
    ]
    for thread in slow:
        thread.start()
    time.sleep(1.0)  # the slow connections are open and have sent their headers
    latencies_ms, failures = [], {}
    session = requests.Session()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                response = session.post(
                    f"{url}/predict", data=body, headers={"Content-Type": "image/png", **(headers or {})}, timeout=5
                )
                outcome = response.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
                session = requests.Session()
            elapsed_ms = (time.perf_counter() - started) * 1e3
            if outcome == 200:
                latencies_ms.append(elapsed_ms)
            else:
                failures[str(outcome)] = failures.get(str(outcome), 0) + 1
            time.sleep(0.02)  # an ordinary client, not a load generator
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=10)
    sent = len(latencies_ms) + sum(failures.values())
    # a request that got no answer counts as slower than any answered one
    ranked = sorted(latencies_ms) + [float("inf")] * sum(failures.values())
    return {
        "slow_connections": connections,
        "seconds": seconds,
        "byte_every_s": byte_every_s,
        "slow_connections_held_to_the_end": outcomes.count("held"),
        "slow_connections_ended_early": {name: outcomes.count(name) for name in set(outcomes) - {"held"}},
        "timed_requests": sent,
        "answered": len(latencies_ms),
        "failures": failures,
        "p50_ms": statistics.median(ranked) if ranked else float("inf"),
        "p99_ms": ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))] if ranked else float("inf"),
    }
