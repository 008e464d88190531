"""Tokens over real HTTP: the production server (`python -m serving`, 2 workers) started with a token file, asked
by requests, tritonclient and KServe's client; a token removed while it runs; the start-up refusal off loopback.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import requests
import tritonclient.http as triton
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from tritonclient.utils import InferenceServerException

from harness.images import encode, garment
from harness.openapi_check import check_http
from harness.server import ProductionServer, ServerExited
from harness.tokens import bearer, issue_token, requests_by_rule
from serving import tokens
from serving.server import check_access

MODEL = "fashion-softmax"
PIXELS = np.stack([garment(label, np.random.default_rng(2)) for label in range(4)])  # (4, 28, 28) light on black


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    return tmp_path_factory.mktemp("tokens") / "tokens"


@pytest.fixture(scope="module")
def issued(token_file):
    return {name: issue_token(token_file, name) for name in ("alice", "bob", "prometheus")}


@pytest.fixture(scope="module")
def server(model_dir, token_file, issued, tmp_path_factory):
    """Every request logged (the access log, the service's INFO lines): the run's log check reads them all."""
    log = tmp_path_factory.mktemp("auth-server") / "server.log"
    with ProductionServer(model_dir, log, tokens_file=token_file, access_log=1, log_level="DEBUG") as running:
        yield running.url, log


def fresh(method: str, url: str, **options) -> requests.Response:
    """A request on a new connection: the two workers take turns, so each worker's token set is exercised."""
    with requests.Session() as session:
        return session.request(method, url, timeout=10, **options)


def test_every_route_over_http(server, issued, model_dir):
    url, _ = server
    version = (model_dir / "model_repository" / MODEL).glob("[0-9]*").__next__().name
    for rule, (method, path, options) in requests_by_rule(version).items():
        body = {"data": options.get("data"), "headers": {"Content-Type": options.get("content_type", "text/plain")}}
        nothing = fresh(method, url + path, **body)
        wrong = fresh(method, url + path, **body | {"headers": body["headers"] | bearer(tokens.new_token())})
        right = fresh(method, url + path, **body | {"headers": body["headers"] | bearer(issued["alice"])})
        if rule in ("/health", "/ready", "/v2/health/live", "/v2/health/ready", "/", "/static/<name>", "/docs",
                    "/docs/<name>", "/openapi.json"):  # fmt: skip
            assert nothing.status_code == wrong.status_code == right.status_code == 200, rule
            continue
        for response in (nothing, wrong):
            assert response.status_code == 401 and response.headers["WWW-Authenticate"].startswith("Bearer"), rule
            check_http(response)  # the documented 401, in the route's protocol's error form
        assert right.status_code in (200, 404), (rule, right.text)  # 404: the small model drew no weights.png
        check_http(right)


def test_a_removed_token_is_refused_by_every_worker_without_a_restart(server, token_file):
    url, _ = server
    token = issue_token(token_file, "temporary")
    png = {"data": encode(PIXELS[0], "PNG"), "headers": {"Content-Type": "image/png"}}

    def answers(count: int) -> set[int]:
        return {fresh("POST", f"{url}/predict", **png | {"headers": png["headers"] | bearer(token)}).status_code
                for _ in range(count)}  # fmt: skip

    deadline = time.monotonic() + 10
    while answers(6) != {200}:  # both workers have read the new file
        assert time.monotonic() < deadline, "a new token is not accepted by every worker after 10 s"
    tokens.remove(token_file, "temporary")
    deadline = time.monotonic() + 10
    while answers(6) != {401}:
        assert time.monotonic() < deadline, "a removed token is still accepted after 10 s"


def test_tritonclient_sends_the_token_in_headers(server, issued):
    url, _ = server
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()  # probes: open
        with pytest.raises(InferenceServerException) as refused:
            client.get_model_metadata(MODEL)
        assert refused.value.status() == "401" and "token" in refused.value.message()
        headers = bearer(issued["bob"])
        assert client.is_model_ready(MODEL, headers=headers)
        tensor = triton.InferInput("image", [4, 1, 28, 28], "FP32")
        tensor.set_data_from_numpy(PIXELS.astype(np.float32)[:, None])
        probabilities = client.infer(MODEL, [tensor], headers=headers).as_numpy("probabilities")
        assert probabilities.shape == (4, 10)
        with pytest.raises(InferenceServerException) as refused:
            client.infer(MODEL, [tensor], headers=bearer(tokens.new_token()))
        assert refused.value.status() == "401"
    finally:
        client.close()


def test_kserve_client_sends_the_token_in_headers(server, issued):
    url, _ = server

    async def run():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=10))
        try:
            tensor = InferInput("image", [2, 1, 28, 28], "FP32")
            tensor.set_data_from_numpy(PIXELS[:2].astype(np.float32)[:, None])
            request = InferRequest(MODEL, [tensor], request_id="k-auth")
            answer = await client.infer(url, request, model_name=MODEL, headers=bearer(issued["bob"]))
            try:
                await client.infer(url, request, model_name=MODEL)
            except Exception as error:  # the client raises its HTTP library's error for a 4xx
                refused = error
            return answer, refused
        finally:
            await client.close()

    answer, refused = asyncio.run(run())
    assert answer.id == "k-auth" and answer.outputs[0].as_numpy().shape == (2, 10)
    assert "401" in str(refused)


def test_the_metrics_are_scraped_with_a_token_and_count_refusals(server, issued):
    url, _ = server
    assert fresh("GET", f"{url}/metrics").status_code == 401
    text = fresh("GET", f"{url}/metrics", headers=bearer(issued["prometheus"])).text
    assert 'status="401"' in text and "fashion_softmax_http_requests_total" in text
    assert not any(token in text for token in issued.values())


def test_the_logs_name_requests_but_never_a_token(server, issued):
    url, log = server
    for token in issued.values():
        fresh("GET", f"{url}/metadata", headers=bearer(token) | {"X-Request-ID": "auth-log-check"})
    deadline = time.monotonic() + 5
    while "auth-log-check" not in log.read_text():  # the service's own line for each request with an id
        assert time.monotonic() < deadline
        time.sleep(0.1)
    text = log.read_text()
    assert "/metadata" in text and not any(token in text for token in issued.values())


def refusal(tmp_path, **settings) -> str:
    """The server's output when it must not start: it exits non-zero, in one line, before listening."""
    with pytest.raises(ServerExited) as exited, ProductionServer(tmp_path / "no-model-needed", tmp_path / "log",
                                                                 **settings):  # fmt: skip
        pass
    assert exited.value.returncode != 0
    output = exited.value.output
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "cannot start" in line]
    return line


def test_off_loopback_without_tokens_it_refuses_to_start(tmp_path):
    line = refusal(tmp_path, host="0.0.0.0")  # refused before binding: nothing listens there
    assert "0.0.0.0" in line and "FASHION_SOFTMAX_TOKENS_FILE" in line
    assert "FASHION_SOFTMAX_ALLOW_UNAUTHENTICATED=1" in line


def test_a_token_file_that_cannot_be_used_stops_the_start(tmp_path):
    line = refusal(tmp_path, tokens_file=tmp_path / "missing")
    assert str(tmp_path / "missing") in line and "there is no token file" in line and "tokens add" in line
    (tmp_path / "pasted").write_text(tokens.new_token() + "\n")
    line = refusal(tmp_path, tokens_file=tmp_path / "pasted")
    assert "line(s) 1" in line and "fst_" not in line


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_needs_no_token(host, capsys):
    check_access({"FASHION_SOFTMAX_HOST": host})
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "api.example"])
def test_any_other_address_needs_tokens_or_the_opt_out(host, capsys):
    with pytest.raises(SystemExit):
        check_access({"FASHION_SOFTMAX_HOST": host})
    check_access({"FASHION_SOFTMAX_HOST": host, "FASHION_SOFTMAX_ALLOW_UNAUTHENTICATED": "1"})
    assert "without tokens" in capsys.readouterr().err.splitlines()[-1]
