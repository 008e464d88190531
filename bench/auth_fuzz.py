"""Fuzzing the Authorization header of a server started with tokens: random, malformed and truncated credentials.

    result = run(server, budget_s=30)   # server: harness.server.ProductionServer(with_token=True)
    result["not_401"], result["open_not_200"], result["server_5xx"]

Every protected operation must answer 401 to each of them, the probes 200 (they ignore the header), and nothing
may answer 5xx; one request in a hundred carries the right token instead and must get 200 (the 401s are earned).
Raw HTTP/1.1 on keep-alive connections: any bytes a header value may hold are sent as they are (HTTP clients
refuse some), and a connection the server closes is opened again. Seeded: the same run each time.
"""

from __future__ import annotations

import random
import re
import socket
import string
import time
from collections import Counter
from urllib.parse import urlsplit

from harness.probes import read_response

B64TOKEN = string.ascii_letters + string.digits + "-._~+/"  # RFC 6750's token characters
VALUE_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])  # what a header value may hold (RFC 9110 5.5)
PROTECTED = (  # (method, path, body): one request for each kind of protected operation
    ("GET", "/metadata", b""),
    ("GET", "/metrics", b""),
    ("GET", "/artifacts/weights.png", b""),
    ("POST", "/predict", b"\x89PNG\r\n\x1a\n"),
    ("GET", "/v2", b""),
    ("GET", "/v2/models/fashion-softmax", b""),
    ("GET", "/v2/models/fashion-softmax/ready", b""),
    ("POST", "/v2/models/fashion-softmax/infer", b'{"inputs": []}'),
    ("GET", "/v2/models/fashion-softmax/versions/1", b""),
    ("POST", "/v2/repository/index", b"{}"),
)
PROBES = (("GET", "/health", b""), ("GET", "/v2/health/ready", b""))
CONTROL = ("GET", "/metadata", b"")  # with the right token: 200


def malformed(token: str, rng: random.Random) -> list[bytes]:
    """One or more Authorization header values (several: the header sent that many times), none of them valid."""
    right = f"Bearer {token}"
    kind = rng.randrange(12)
    if kind == 0:  # random bytes a header may carry
        return [bytes(rng.choice(VALUE_BYTES) for _ in range(rng.randrange(1, 200)))]
    if kind == 1:  # the right credentials cut short
        return [right[: rng.randrange(0, len(right))].encode()]
    if kind == 2:  # one character of the token changed
        at = rng.randrange(len(token))
        other = rng.choice(B64TOKEN.replace(token[at], ""))
        return [f"Bearer {token[:at]}{other}{token[at + 1 :]}".encode()]
    if kind == 3:  # one character of the token dropped, or one added
        at = rng.randrange(len(token))
        changed = token[:at] + token[at + 1 :] if rng.random() < 0.5 else token[:at] + rng.choice(B64TOKEN) + token[at:]
        return [f"Bearer {changed}".encode()]
    if kind == 4:  # the right token under another scheme, or none
        scheme = rng.choice(["Basic", "Token", "Bearer:", "Bearer-", "Bear", "Bearerx", "", "MAC", "Digest"])
        return [f"{scheme} {token}".strip().encode()]
    if kind == 5:  # the right token with more around it
        extra = rng.choice([f"{right} {token}", f"{right}, {right}", f"{right};", f'Bearer "{token}"', f"{right}\t1"])
        return [extra.encode()]
    if kind == 6:  # a well-formed token that was never issued
        return [f"Bearer fst_{''.join(rng.choices(B64TOKEN, k=43))}".encode()]
    if kind == 7:  # long values
        return [b"Bearer " + bytes(rng.choices(B64TOKEN.encode(), k=rng.randrange(200, 7000)))]
    if kind == 8:  # no value at all, or only blanks
        return [rng.choice([b"", b" ", b"\t", b"Bearer", b"Bearer  "])]
    if kind == 9:  # the header twice: a wrong one beside the right one (in either order)
        wrong = f"Bearer fst_{''.join(rng.choices(B64TOKEN, k=43))}".encode()
        return [wrong, right.encode()] if rng.random() < 0.5 else [right.encode(), wrong]
    if kind == 10:  # bytes outside ASCII inside the token
        at = rng.randrange(len(token))
        return [f"Bearer {token[:at]}".encode() + bytes([rng.randrange(0x80, 0x100)]) + token[at:].encode()]
    scheme = "".join(rng.choice([c.upper(), c]) for c in "bearer")  # 11: any case of the scheme, a wrong token
    return [f"{scheme} {''.join(rng.choices(B64TOKEN, k=rng.randrange(1, 80)))}".encode()]


def is_valid(values: list[bytes], token: str) -> bool:
    """A guard against sending the right credentials by chance: one header, `Bearer <token>` in any case."""
    right = re.compile(rb"(?i:bearer) +" + re.escape(token.encode()))
    return len(values) == 1 and right.fullmatch(values[0].strip()) is not None


def request_bytes(method: str, path: str, body: bytes, values: list[bytes], host: str) -> bytes:
    headers = b"".join(b"Authorization: " + value + b"\r\n" for value in values)
    return (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + headers + b"\r\n" + body  # fmt: skip


TARGET_REQUESTS = 5000


def run(server, budget_s: float, target: int = TARGET_REQUESTS, connections: int = 4) -> dict:
    """Malformed headers (one in ten on a probe), spread over `connections` keep-alive sockets, until `target` of
    them are answered or the budget is spent: the figure reached is reported against the target."""
    token = server.auth["Authorization"].removeprefix("Bearer ")
    host, port = urlsplit(server.url).hostname, urlsplit(server.url).port
    before_5xx = server.requests_counted(status="5")
    rng = random.Random(0)
    statuses: Counter = Counter()  # (protected?, status)
    controls: Counter = Counter()  # status of the requests with the right token
    kinds_sent, reconnects, sent = Counter(), 0, 0
    sockets = [socket.create_connection((host, port), timeout=10) for _ in range(connections)]
    deadline = time.monotonic() + budget_s
    try:
        while statuses.total() < target and time.monotonic() < deadline:  # malformed ones answered
            control = sent % 100 == 99
            values = [server.auth["Authorization"].encode()] if control else malformed(token, rng)
            if not control and is_valid(values, token):
                continue
            protected = sent % 10 != 0
            method, path, body = CONTROL if control else rng.choice(PROTECTED if protected else PROBES)
            slot = sent % connections
            try:
                sockets[slot].sendall(request_bytes(method, path, body, values, f"{host}:{port}"))
                answer = read_response(sockets[slot])
            except OSError:
                answer = None
            if answer is None:  # the server closed the connection: counted, and a new one opened
                status = "closed"
                sockets[slot].close()
                sockets[slot] = socket.create_connection((host, port), timeout=10)
                reconnects += 1
            else:
                status = int(answer[0].split(b" ", 2)[1])
                if b"connection: close" in answer[0].lower():
                    sockets[slot].close()
                    sockets[slot] = socket.create_connection((host, port), timeout=10)
                    reconnects += 1
            sent += 1
            if control:
                controls[status] += 1
                continue
            statuses[(protected, status)] += 1
            kinds_sent[len(values)] += 1
    finally:
        for connection in sockets:
            connection.close()
    not_401 = {str(status): count for (protected, status), count in statuses.items() if protected and status != 401}
    open_not_200 = {str(status): count for (protected, status), count in statuses.items()
                    if not protected and status != 200}  # fmt: skip
    return {
        "target": target,
        "requests": statuses.total(),  # malformed ones
        "controls": sum(controls.values()),
        "controls_not_200": sum(count for status, count in controls.items() if status != 200),
        "protected_requests": sum(count for (protected, _), count in statuses.items() if protected),
        "statuses": {
            f"{'protected' if protected else 'probe'} {status}": n for (protected, status), n in statuses.items()
        },
        "not_401": sum(not_401.values()),
        "not_401_by_status": not_401,
        "open_not_200": sum(open_not_200.values()),
        "sent_the_header_twice": kinds_sent[2],
        "reconnects": reconnects,
        "server_5xx": server.requests_counted(status="5") - before_5xx,
    }
