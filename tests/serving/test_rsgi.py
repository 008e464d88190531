"""The production server's body handling (serving/rsgi.py), over real HTTP on 127.0.0.1: what the Flask app
sees of a request is what it sent, bodies are read whole before the app runs, and the limits on a body
(size, time) end in the app's own JSON errors."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest
import requests

from bench.server_probes import read_response
from tests.helpers import encode
from tests.serving.live_server import live_server
from tests.serving.test_api import GARMENTS

PNG = encode(GARMENTS[3], "PNG")  # a Dress


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory):
    """The production server with small limits: 64 KiB bodies, 2 s to send one."""
    log = tmp_path_factory.mktemp("rsgi") / "server.log"
    with live_server(model_dir, log, max_content_length=65536, body_timeout=2) as url:
        yield url


def raw_exchange(url: str, request: bytes) -> tuple[int, str]:
    """Sends `request` as it is on a new connection; returns the answer's status and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        answer = read_response(connection)
    assert answer is not None, "the server closed the connection without an answer"
    head, body = answer
    return int(head.split()[1]), body.decode()


def test_path_query_and_headers_reach_the_app_as_sent(server):
    # percent-encoded path: routed as its decoded form
    assert requests.get(f"{server}/v2/models/fashion%2Dsoftmax/ready", timeout=5).status_code == 200
    # the query string: the app reads and refuses a bad value by name
    response = requests.post(f"{server}/predict?invert=maybe", data=PNG, headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and "'maybe'" in response.json()["error"]["message"]
    # a header the app reads (the request id is logged by the metrics middleware): request succeeds with it
    response = requests.post(
        f"{server}/predict", data=PNG, headers={"Content-Type": "image/png", "X-Request-ID": "abc"}, timeout=5
    )
    assert response.status_code == 200 and response.json()["predictions"][0]["label"] == "Dress"


def test_a_chunked_body_is_read_whole(server):
    def chunks():
        for start in range(0, len(PNG), 50):
            yield PNG[start : start + 50]

    chunked = requests.post(f"{server}/predict", data=chunks(), headers={"Content-Type": "image/png"}, timeout=5)
    plain = requests.post(f"{server}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=5)
    assert chunked.status_code == 200, chunked.text
    assert chunked.json()["predictions"] == plain.json()["predictions"]


def test_a_body_declared_over_the_limit_is_refused_unread(server):
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 70000\r\n\r\n"
    status, body = raw_exchange(server, request)  # nothing of the body sent: the answer comes anyway
    assert status == 413 and '"request_entity_too_large"' in body


def test_a_chunked_body_past_the_limit_is_refused(server):
    def endless():
        for _ in range(100):  # 100 x 4 KiB: past the 64 KiB limit
            yield b"\0" * 4096

    response = requests.post(f"{server}/predict", data=endless(), headers={"Content-Type": "image/png"}, timeout=10)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_entity_too_large"


def test_a_body_that_does_not_arrive_in_time_gets_408_and_others_are_answered(server):
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100\r\n\r\nabc"
    answered = []

    def meanwhile():  # while the slow body waits, ordinary requests are answered
        for _ in range(5):
            answered.append(
                requests.post(f"{server}/predict", data=PNG, headers={"Content-Type": "image/png"}).status_code
            )

    other = threading.Thread(target=meanwhile)
    other.start()
    started = time.monotonic()
    status, body = raw_exchange(server, request)
    other.join()
    assert status == 408 and '"request_timeout"' in body and "2 s" in body
    assert 1.5 < time.monotonic() - started < 8
    assert answered == [200] * 5

    v2 = b"POST /v2/models/fashion-softmax/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{"
    status, body = raw_exchange(server, v2)  # the Open Inference Protocol's error form under /v2
    assert status == 408 and body.startswith('{"error":"the body did not arrive')


def test_stalled_bodies_hold_no_thread_so_150_of_them_do_not_stop_the_service(server):
    host, port = server.removeprefix("http://").split(":")
    with contextlib.ExitStack() as stack:
        for _ in range(150):  # more than the 2 x 32 threads a WSGI server had for bodies
            connection = stack.enter_context(socket.create_connection((host, int(port)), timeout=5))
            connection.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 900\r\n\r\n"
            )
        time.sleep(0.5)
        answers = [
            requests.post(f"{server}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=1).status_code
            for _ in range(10)
        ]
    assert answers == [200] * 10


def test_a_client_that_leaves_mid_body_costs_nothing(server):
    host, port = server.removeprefix("http://").split(":")
    for _ in range(20):
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + PNG[:100])
    response = requests.post(f"{server}/predict", data=PNG, headers={"Content-Type": "image/png"}, timeout=5)
    assert response.status_code == 200
    assert requests.get(f"{server}/health", timeout=5).json() == {"status": "ok"}
