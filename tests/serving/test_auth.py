"""Bearer tokens (serving/auth.py) through Flask's test client: every route without a token, with a wrong one, with a
removed one (the file changed, no restart) and with a right one; malformed credentials; the token file failing closed.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from harness.tokens import bearer, issue_token, requests_by_rule
from harness.v2_bodies import MODEL
from serving import create_app, tokens
from serving.auth import OPEN_RULES
from serving.openapi import document


@pytest.fixture
def token_file(tmp_path):
    return tmp_path / "tokens"


@pytest.fixture
def issued(token_file):
    """Two tokens in the file: {name: token}."""
    return {name: issue_token(token_file, name) for name in ("alice", "bob")}


@pytest.fixture
def secured(model_dir, token_file, issued):
    app = create_app({"MODEL_DIR": str(model_dir), "TESTING": True, "TOKENS_FILE": str(token_file)})
    app.extensions["tokens"].check_every_s = 0.05  # a test need not wait a second for a change to count
    return app


@pytest.fixture
def routes(model_dir):
    version = str(json.loads((model_dir / "model.json").read_text())["model_repository"]["version"])
    return requests_by_rule(version)


def send(client, request, headers=None):
    method, path, options = request
    return client.open(path, method=method, headers=headers or {}, **options)


def assert_refused(response, path: str, sent_a_token: bool) -> None:
    assert response.status_code == 401, (path, response.status_code)
    challenge = 'Bearer realm="fashion-softmax"' + (', error="invalid_token"' if sent_a_token else "")
    assert response.headers["WWW-Authenticate"] == challenge
    error = response.get_json()["error"]
    if path.startswith("/v2"):
        assert isinstance(error, str) and "token" in error  # the Open Inference Protocol's form
    else:
        assert error["code"] == "unauthorized" and "token" in error["message"]


def test_the_table_covers_every_route(secured, routes):
    assert set(routes) == {rule.rule for rule in secured.url_map.iter_rules()}


def test_the_open_routes_are_the_documents_open_operations():
    """serving/openapi.yaml says `security: []` on exactly the operations the hook lets through."""
    operations = [(path, operation) for path, item in document()["paths"].items() for operation in item.values()
                  if isinstance(operation, dict)]  # fmt: skip
    open_documented = {path.replace("{", "<").replace("}", ">") for path, op in operations if op.get("security") == []}
    assert open_documented == OPEN_RULES
    assert document()["security"] == [{"bearer": []}]
    scheme = document()["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_every_route_without_a_token(secured, routes):
    client = secured.test_client()
    for rule, request in routes.items():
        response = send(client, request)
        if rule in OPEN_RULES:
            assert response.status_code == 200, rule
        else:
            assert_refused(response, request[1], sent_a_token=False)


def test_every_route_with_a_wrong_token(secured, routes):
    client = secured.test_client()
    wrong = tokens.new_token()  # well formed, never issued
    for rule, request in routes.items():
        response = send(client, request, bearer(wrong))
        if rule in OPEN_RULES:
            assert response.status_code == 200, rule
        else:
            assert_refused(response, request[1], sent_a_token=True)


def test_every_route_with_a_right_token_answers_as_an_open_service(secured, model_dir, routes, issued):
    open_client = create_app({"MODEL_DIR": str(model_dir), "TESTING": True}).test_client()
    client = secured.test_client()
    for rule, request in routes.items():
        expected = send(open_client, request)
        response = send(client, request, bearer(issued["alice"]))
        assert response.status_code == expected.status_code, rule
        assert "WWW-Authenticate" not in response.headers
        if response.mimetype == "application/json" and rule != "/metadata":  # /metadata names the load time
            assert response.get_json() == expected.get_json(), rule


def test_a_removed_token_is_refused_without_a_restart(secured, token_file, routes, issued):
    client = secured.test_client()
    predict = routes["/predict"]
    assert send(client, predict, bearer(issued["alice"])).status_code == 200
    tokens.remove(token_file, "alice")
    deadline = time.monotonic() + 5
    while send(client, predict, bearer(issued["alice"])).status_code == 200:
        assert time.monotonic() < deadline, "the removed token is still accepted after 5 s"
        time.sleep(0.02)
    for rule, request in routes.items():
        if rule not in OPEN_RULES:
            assert_refused(send(client, request, bearer(issued["alice"])), request[1], sent_a_token=True)
    assert send(client, predict, bearer(issued["bob"])).status_code == 200  # the other token still works
    added = issue_token(token_file, "carol")
    deadline = time.monotonic() + 5
    while send(client, predict, bearer(added)).status_code != 200:
        assert time.monotonic() < deadline, "a new token is not accepted after 5 s"
        time.sleep(0.02)


MALFORMED = {  # name: the Authorization header, made from a right token
    "scheme only": lambda token: "Bearer",
    "scheme and space": lambda token: "Bearer ",
    "no scheme": lambda token: token,
    "basic scheme": lambda token: f"Basic {token}",
    "token scheme": lambda token: f"Token {token}",
    "truncated": lambda token: f"Bearer {token}"[:-1],
    "one more character": lambda token: f"Bearer {token}x",
    "one character changed": lambda token: f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}",
    "two tokens": lambda token: f"Bearer {token} {token}",
    "comma joined": lambda token: f"Bearer {token}, Bearer {token}",
    "quoted": lambda token: f'Bearer "{token}"',
    "not ascii": lambda token: f"Bearer {token}é",
    "a control character": lambda token: f"Bearer {token}\x7f",
    "long": lambda token: "Bearer " + "A" * 8000,
}


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_credentials_get_401(secured, routes, issued, make):
    value = make(issued["alice"])
    client = secured.test_client()
    for path in ("/predict", f"/v2/models/{MODEL}/infer"):
        request = routes["/predict"] if path == "/predict" else routes["/v2/models/<name>/infer"]
        assert_refused(send(client, request, {"Authorization": value}), path, sent_a_token=True)
    assert send(client, routes["/health"], {"Authorization": value}).status_code == 200  # probes ignore it


@pytest.mark.parametrize("credentials", ["bearer {token}", "BEARER {token}", "Bearer   {token}"])
def test_the_scheme_is_case_insensitive(secured, routes, issued, credentials):
    client = secured.test_client()
    headers = {"Authorization": credentials.format(token=issued["bob"])}
    assert send(client, routes["/predict"], headers).status_code == 200


def test_unknown_paths_need_a_token_too(secured, issued):
    """A path no route matches is not open: without a token nothing about the routes is told."""
    client = secured.test_client()
    assert_refused(client.get("/no-such-thing"), "/no-such-thing", sent_a_token=False)
    assert_refused(client.post("/health"), "/health", sent_a_token=False)  # 405 with a token, not without
    assert client.get("/no-such-thing", headers=bearer(issued["bob"])).status_code == 404
    assert client.post("/health", headers=bearer(issued["bob"])).status_code == 405


def test_a_missing_or_broken_token_file_accepts_no_token(secured, token_file, routes, issued, caplog):
    client = secured.test_client()
    predict = routes["/predict"]
    pasted = tokens.new_token()
    token_file.write_text(token_file.read_text() + pasted + "\n")  # a token pasted where its hash belongs
    with caplog.at_level(logging.WARNING, logger="serving.auth"):
        deadline = time.monotonic() + 5
        while send(client, predict, bearer(issued["alice"])).status_code == 200:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert send(client, predict, bearer(issued["bob"])).status_code == 401  # failed closed: every token
    (warning,) = [record.getMessage() for record in caplog.records if record.name == "serving.auth"]
    assert "line(s) 4" in warning and pasted not in warning  # said by number, never by content
    token_file.unlink()
    time.sleep(0.1)
    assert send(client, predict, bearer(issued["bob"])).status_code == 401


def test_the_file_is_looked_at_once_a_second_at_most(model_dir, token_file, issued, monkeypatch):
    app = create_app({"MODEL_DIR": str(model_dir), "TESTING": True, "TOKENS_FILE": str(token_file)})
    looked = []
    real_stat = tokens.os.stat

    def counting_stat(path, *args, **kwargs):
        if str(path) == str(token_file):
            looked.append(path)
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr("serving.auth.os.stat", counting_stat)
    client = app.test_client()
    started = time.monotonic()
    for _ in range(200):
        assert client.get("/metadata", headers=bearer(issued["alice"])).status_code == 200
    seconds = time.monotonic() - started
    assert len(looked) <= seconds / app.extensions["tokens"].check_every_s + 1


def test_tokens_are_not_in_metrics_or_error_bodies(secured, routes, issued):
    client = secured.test_client()
    for token in (issued["alice"], tokens.new_token()):
        for request in (routes["/predict"], routes["/v2/models/<name>/infer"], ("GET", "/nowhere", {})):
            assert token not in send(client, request, bearer(token)).get_data(as_text=True)
    metrics = client.get("/metrics", headers=bearer(issued["alice"])).get_data(as_text=True)
    assert 'status="401"' in metrics
    assert not any(token in metrics for token in issued.values())
