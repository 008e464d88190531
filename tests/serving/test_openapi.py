"""serving/openapi.yaml: a valid OpenAPI 3.1 document, served at /openapi.json, naming every route of the app.

(That the tests' real responses match it is checked on every test-client response: harness/openapi_check.py.)
"""

from __future__ import annotations

import re

import pytest
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.validation.response.exceptions import DataValidationError, InvalidData
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from harness import openapi_check
from serving.openapi import document

IGNORED_METHODS = {"HEAD", "OPTIONS"}  # Werkzeug answers these for every route


def test_the_document_is_valid_openapi_3_1():
    validate(document(), cls=OpenAPIV31SpecValidator)  # raises on any error


def test_it_is_served_as_json(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == document()


def test_every_route_is_documented_and_every_documented_route_exists(app):
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # /v2/models/<name> -> /v2/models/{name}
        routes |= {(path, method) for method in rule.methods - IGNORED_METHODS}
    documented = {
        (path, method.upper())
        for path, item in document()["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    }
    assert routes == documented


def test_the_tests_responses_are_checked(client):
    before = len(openapi_check.checked)
    client.get("/v2/health/live")
    client.get("/v2/models/unknown")
    client.post("/predict", data=b"junk", content_type="text/plain")
    assert openapi_check.checked[before:] == [
        ("GET", "/v2/health/live", 200), ("GET", "/v2/models/unknown", 404), ("POST", "/predict", 415)
    ]  # fmt: skip


def sent(path: str, method: str = "GET") -> Request:
    return Request(EnvironBuilder(path=path, method=method).get_environ())


@pytest.mark.parametrize(
    "path, body, status, error",
    [
        ("/v2/health/live", '{"live": "yes"}', 200, InvalidData),  # wrong type
        ("/v2/models/fashion-softmax", '{"name": "x"}', 200, InvalidData),  # required fields missing
        ("/v2/models/fashion-softmax", '{"error": {"code": "not_found", "message": "m"}}', 404, InvalidData),
        ("/predict", '{"error": "a string"}', 400, InvalidData),  # the V2 format on a native route
        ("/v2/health/live", '{"error": "boom"}', 500, ResponseNotFound),  # undocumented status
        ("/predict", '{"model": {"name": "m", "version": "1"}, "predictions": [], "input": []}', 200, InvalidData),
    ],
    ids=[
        "wrong-type",
        "missing-fields",
        "native-error-under-v2",
        "v2-error-on-predict",
        "undocumented-status",
        "undocumented-field",
    ],
)
def test_the_check_refuses_responses_the_document_does_not_allow(path, body, status, error):
    method = "POST" if path == "/predict" else "GET"
    with pytest.raises((error, DataValidationError)):
        openapi_check.check(sent(path, method), Response(body, status=status, mimetype="application/json"))
