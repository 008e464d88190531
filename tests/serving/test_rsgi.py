"""The production server's body handling (serving/rsgi.py), over real HTTP on 127.0.0.1: what the Flask app
sees of a request is what it sent, bodies are read whole before the app runs, and the limits on a body
(size, time) end in the app's own JSON errors."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import SimpleNamespace

import pytest
import requests

from harness.images import GARMENTS, png
from harness.probes import address, exchange, head, read_response, slow_clients_while_timing
from harness.server import ProductionServer
from serving.rsgi import BufferedWSGI

PNG = png(GARMENTS[3])  # a Dress


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The production server with small limits: 64 KiB bodies, 2 s to send one."""
    log = tmp_path_factory.mktemp("rsgi") / "server.log"
    with ProductionServer(model_dir, log, max_content_length=65536, body_timeout=2) as running:
        yield running


def test_path_query_and_headers_reach_the_app_as_sent(server):
    url = server.url
    # percent-encoded path: routed as its decoded form
    assert requests.get(f"{url}/v2/models/fashion%2Dsoftmax/ready", timeout=5).status_code == 200
    # the query string: the app reads and refuses a bad value by name
    response = requests.post(f"{url}/predict?invert=maybe", data=PNG, headers={"Content-Type": "image/png"}, timeout=5)
    assert response.status_code == 400 and "'maybe'" in response.json()["error"]["message"]
    # a header the app reads: the metrics middleware logs the request id it was given
    request_id = f"headers-{time.time_ns()}"
    response = requests.post(
        f"{url}/predict", data=PNG, headers={"Content-Type": "image/png", "X-Request-ID": request_id}, timeout=5
    )
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "Dress"
    server.wait_for_log(rf"request {request_id}: POST /predict -> 200 \(worker \d+\)")


def test_a_repeated_header_reaches_the_app_as_one_comma_joined_value(server):
    run = time.time_ns()
    ids = (("X-Request-ID", f"first-{run}"), ("X-Request-ID", f"second-{run}"))
    status, _ = exchange(server.url, head("/health", content_type=None, method="GET", headers=ids))
    assert status == 200
    server.wait_for_log(rf"request first-{run}, second-{run}: GET /health -> 200")


class Headers:
    """Granian's RSGI headers as the adapter reads them: lower-case names, a repeated name once per value."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.pairs = pairs

    def get(self, name: str, default=None):
        return next((value for key, value in self.pairs if key == name), default)

    def items(self):
        return list(self.pairs)


class Protocol:
    """An RSGI protocol with the whole body at hand; keeps the response it is given."""

    def __init__(self, body: bytes):
        self.body, self.response = body, None

    async def __call__(self) -> bytes:
        return self.body

    def response_bytes(self, status: int, headers: list, content: bytes) -> None:
        self.response = (status, headers, content)


def test_repeated_headers_and_cookies_are_joined_as_wsgi_expects():
    seen = {}

    def app(environ, start_response):  # a WSGI app that keeps the environ it was called with
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ["wsgi.input"].read()]

    scope = SimpleNamespace(
        method="POST", path="/echo", query_string="a=1", http_version="1.1", scheme="http",
        server="127.0.0.1:8000", client="127.0.0.1:50000",
        headers=Headers([("accept", "text/html"), ("cookie", "a=1"), ("accept", "application/json"),
                         ("cookie", "b=2"), ("content-length", "4"), ("content-type", "text/plain")]),
    )  # fmt: skip
    protocol = Protocol(b"body")
    asyncio.run(BufferedWSGI(app, max_body=100, body_timeout=1).__rsgi__(scope, protocol))
    assert seen["HTTP_ACCEPT"] == "text/html, application/json"  # RFC 9110, 5.3: one comma-joined value
    assert seen["HTTP_COOKIE"] == "a=1; b=2"  # cookies are joined by "; " (RFC 6265, 5.4)
    assert (seen["CONTENT_LENGTH"], seen["CONTENT_TYPE"], seen["QUERY_STRING"]) == ("4", "text/plain", "a=1")
    assert "HTTP_CONTENT_LENGTH" not in seen and "HTTP_CONTENT_TYPE" not in seen
    assert protocol.response == (200, [("Content-Type", "text/plain")], b"body")


def test_a_chunked_body_is_read_whole(server):
    def chunks():
        for start in range(0, len(PNG), 50):
            yield PNG[start : start + 50]

    url = server.url
    chunked = requests.post(f"{url}/predict", data=chunks(), headers={"Content-Type": "image/png"}, timeout=5)
    plain = requests.post(f"{url}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=5)
    assert chunked.status_code == 200, chunked.text
    assert chunked.json()["predictions"] == plain.json()["predictions"]


def test_a_body_declared_over_the_limit_is_refused_unread(server):
    status, body = exchange(server.url, head("/predict", 70000))  # nothing of the body sent: the answer comes anyway
    assert status == 413 and b'"request_entity_too_large"' in body


def test_a_chunked_body_past_the_limit_is_refused(server):
    def endless():
        for _ in range(100):  # 100 x 4 KiB: past the 64 KiB limit
            yield b"\0" * 4096

    response = requests.post(f"{server.url}/predict", data=endless(), headers={"Content-Type": "image/png"}, timeout=10)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_entity_too_large"


def test_a_body_that_does_not_arrive_in_time_gets_408_and_requests_meanwhile_are_answered(server):
    url = server.url
    meanwhile: list[tuple[float, float, int | str]] = []  # (sent, answered, status) of ordinary requests

    def ordinary_requests():
        for _ in range(3):
            sent = time.monotonic()
            try:
                status = requests.post(f"{url}/predict", data=PNG, headers={"Content-Type": "image/png"},
                                       timeout=1).status_code  # fmt: skip
            except requests.RequestException as error:
                status = type(error).__name__
            meanwhile.append((sent, time.monotonic(), status))

    with socket.create_connection(address(url), timeout=10) as slow:
        slow.sendall(head("/predict", 100) + b"abc")  # 3 of the 100 bytes announced
        slow_sent = time.monotonic()
        other = threading.Thread(target=ordinary_requests)
        other.start()
        answer = read_response(slow)
        slow_answered = time.monotonic()
    other.join(timeout=10)
    assert answer is not None, "the server closed the connection without an answer"
    assert answer[0].split()[1] == b"408" and b'"request_timeout"' in answer[1] and b"2 s" in answer[1]
    assert 1.5 < slow_answered - slow_sent < 8
    assert [status for *_, status in meanwhile] == [200] * 3
    # each ordinary request was sent after the slow body had begun and answered before it was given up on
    assert all(slow_sent < sent < answered < slow_answered for sent, answered, _ in meanwhile), (
        slow_sent, slow_answered, meanwhile)  # fmt: skip

    v2 = head("/v2/models/fashion-softmax/infer", 10, content_type=None) + b"{"
    status, body = exchange(url, v2)  # the Open Inference Protocol's error form under /v2
    assert status == 408 and body.startswith(b'{"error":"the body did not arrive')


def test_stalled_bodies_hold_no_thread_so_150_of_them_do_not_stop_the_service(server):
    # more than the 2 x 32 threads a WSGI server would have for reading bodies
    found = slow_clients_while_timing(server.url, PNG, 150, seconds=2, byte_every_s=None, timeout_s=1)
    assert found["slow_connections_held_to_the_end"] == 150  # all stalled throughout the timed requests
    assert found["timed_requests"] >= 10 and found["answered"] == found["timed_requests"], found["failures"]


def test_a_client_that_leaves_mid_body_costs_nothing(server):
    for _ in range(20):
        with socket.create_connection(address(server.url), timeout=5) as connection:
            connection.sendall(head("/predict", 5000, content_type=None) + PNG[:100])
    response = requests.post(f"{server.url}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=5)
    assert response.status_code == 200
    assert requests.get(f"{server.url}/health", timeout=5).json() == {"status": "ok"}
