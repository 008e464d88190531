"""How a running server behaves beyond throughput: raw HTTP exchanges, keep-alive, slow and stalled clients,
a worker killed under load. Every probe talks to 127.0.0.1 and is bounded in time.

    exchange(url, head("/predict", 70000))                      # (413, b'{"error": ...}'): a raw request
    slow_clients_while_timing(url, png, 50, seconds=30, byte_every_s=2)   # trickling clients (None: stalled)
    worker_killed_under_load(server, body_file, "image/png", 64, seconds=60, kill_after_s=20)
"""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from urllib.parse import urlsplit

import requests

from harness import wrk
from harness.server import ProductionServer


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


def connect(url: str, timeout: float = 5) -> socket.socket:
    """A connection to the server of `url`; over TLS for https (checked against REQUESTS_CA_BUNDLE when set, as
    requests does: the compose stack's development CA)."""
    connection = socket.create_connection(address(url), timeout=timeout)
    if urlsplit(url).scheme != "https":
        return connection
    context = ssl.create_default_context(cafile=os.environ.get("REQUESTS_CA_BUNDLE"))
    return context.wrap_socket(connection, server_hostname=urlsplit(url).hostname)


def head(path: str = "/predict", content_length: int | None = None, content_type: str | None = "image/png",
         method: str = "POST", headers: tuple[tuple[str, str], ...] = ()) -> bytes:  # fmt: skip
    """The head of an HTTP/1.1 request, ready to send; headers: more (name, value) lines, a name may repeat."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"Content-Type: {content_type}"] if content_type else []
    lines += [f"Content-Length: {content_length}"] if content_length is not None else []
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(connection: socket.socket) -> tuple[bytes, bytes] | None:
    """One answer from the connection, as (head, body) by its Content-Length; None if it closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    response_head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in response_head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(rest) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return response_head, rest


def exchange(url: str, request: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """Sends `request` as it is on a new connection (over TLS for https); the answer's status and body
    (AssertionError if none)."""
    with connect(url, timeout) as connection:
        connection.sendall(request)
        answer = read_response(connection)
    assert answer is not None, "the server closed the connection without an answer"
    response_head, body = answer
    return int(response_head.split()[1]), body


def keeps_alive(url: str, body: bytes) -> bool:
    """Two requests on one connection (over TLS for https): does the server keep it open after the first answer?"""
    request = head("/predict", len(body)) + body
    with connect(url) as connection:
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


ANNOUNCED_BODY = 4096  # bytes a slow client promises in Content-Length; at 1 byte per 2 s, 15 arrive in 30 s


def slow_client(url: str, started: threading.Semaphore, stop: threading.Event, byte_every_s: float | None,
                outcome: list[str]) -> None:  # fmt: skip
    """One client that sends its headers, then a byte of the body every `byte_every_s` (None: never) until
    `stop`; releases `started` once the headers are out and appends "held" (open to the end) or why it
    ended early (the server may close it)."""
    try:
        with connect(url) as connection:
            connection.sendall(head("/predict", ANNOUNCED_BODY))
            started.release()
            while not stop.wait(byte_every_s or 3600):
                connection.sendall(b"\x89")
            outcome.append("held")
    except OSError as error:
        started.release()
        outcome.append(type(error).__name__)


def slow_clients_while_timing(
    url: str,
    body: bytes,
    connections: int,
    seconds: float,
    byte_every_s: float | None,
    timeout_s: float = 5,
    headers: dict | None = None,
) -> dict:
    """`connections` slow clients (trickling a byte every byte_every_s, or stalled after their headers: None)
    while one ordinary client sends `body` to /predict, one request at a time for `seconds`, and times it;
    headers: added to the timed requests (a token).

    A request that got no answer within timeout_s counts as slower than any answered one: against a frozen
    server this returns on time, with the failures counted.
    """
    started, stop, outcomes = threading.Semaphore(0), threading.Event(), []
    slow = [threading.Thread(target=slow_client, args=(url, started, stop, byte_every_s, outcomes), daemon=True)
            for _ in range(connections)]  # fmt: skip
    for thread in slow:
        thread.start()
    headers_out = time.monotonic() + 10
    for _ in slow:  # every slow client has sent its headers (or failed to connect)
        started.acquire(timeout=max(0.0, headers_out - time.monotonic()))
    latencies_ms, failures = [], {}
    session = requests.Session()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            began = time.perf_counter()
            try:
                response = session.post(f"{url}/predict", data=body, timeout=timeout_s,
                                        headers={"Content-Type": "image/png", **(headers or {})})  # fmt: skip
                outcome = response.status_code
            except requests.RequestException as error:
                outcome = type(error).__name__
                session = requests.Session()
            elapsed_ms = (time.perf_counter() - began) * 1e3
            if outcome == 200:
                latencies_ms.append(elapsed_ms)
            else:
                failures[str(outcome)] = failures.get(str(outcome), 0) + 1
            time.sleep(0.02)  # an ordinary client, not a load generator
    finally:
        stop.set()
        for thread in slow:
            thread.join(timeout=10)
    ranked = sorted(latencies_ms) + [float("inf")] * sum(failures.values())
    return {
        "slow_connections": connections,
        "seconds": seconds,
        "byte_every_s": byte_every_s,
        "slow_connections_held_to_the_end": outcomes.count("held"),
        "slow_connections_ended_early": {name: outcomes.count(name) for name in set(outcomes) - {"held"}},
        "timed_requests": len(ranked),
        "answered": len(latencies_ms),
        "failures": failures,
        "p50_ms": ranked[len(ranked) // 2] if ranked else float("inf"),
        "p99_ms": ranked[min(len(ranked) - 1, int(0.99 * len(ranked)))] if ranked else float("inf"),
    }


def worker_killed_under_load(
    server: ProductionServer, body_file, content_type: str, connections: int, seconds: float, kill_after_s: float
) -> dict:
    """wrk posts body_file (with the server's token, if it has one) for `seconds`; one worker gets SIGKILL after
    kill_after_s; then, within 30 s, the server must serve with all its workers again, none of them the killed one."""
    workers_before = server.worker_pids()
    command = wrk.command(f"{server.url}/predict", body_file, content_type, connections, seconds, server.auth)
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(kill_after_s)
        victim = workers_before[0]
        os.kill(victim, signal.SIGKILL)
        output, _ = load.communicate(timeout=seconds + 60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait(timeout=10)
    try:
        server.wait_healthy(30, gone=victim)
        replaced = True
    except RuntimeError:
        replaced = False
    workers_after = server.worker_pids()
    return {
        "killed": victim,
        "workers_before": workers_before,
        "workers_after": workers_after,
        "replaced": replaced and victim not in workers_after and len(workers_after) == len(workers_before),
        "wrk": wrk.parse(output),
    }
