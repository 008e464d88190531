"""Responses checked against serving/openapi.yaml (openapi-core): `CheckedClient` for Flask's test client,
`check_http` for a `requests` response from a real server.

tests/serving/conftest.py installs `CheckedClient` for every app there; a response whose status, content type, headers
or body the document does not allow fails the test that got it. Only a 404 or 405 for a path or method the
document does not have (the not-found tests) is let through, and a 401 for one (a server with tokens tells
nothing about a path to a request without one).
"""

from __future__ import annotations

from flask.testing import FlaskClient
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.deserializing.media_types.util import plain_loads
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from serving.openapi import document

# openapi-core reads text/plain and text/html as text; the page's script and stylesheet are text too
TEXT = {"text/javascript": plain_loads, "text/css": plain_loads}
SPEC = OpenAPI.from_dict(document(), config=Config(extra_media_type_deserializers=TEXT))
checked: list[tuple[str, str, int]] = []  # (method, path, status) of every response checked


class SentRequest(WerkzeugOpenAPIRequest):
    """The request as the test client sent it; its body was read by the app (responses do not depend on it)."""

    @property
    def body(self) -> bytes:
        return b""


def check(request, response) -> None:
    """Raise if the document does not describe this (Werkzeug) response to this request."""
    _validate(SentRequest(request), WerkzeugOpenAPIResponse(response), response.status_code)
    checked.append((request.method, request.path, response.status_code))


def check_http(response) -> None:
    """The same for a `requests` response from a real server."""
    _validate(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response), response.status_code)


def _validate(request, response, status: int) -> None:
    try:
        SPEC.validate_response(request, response)
    except (PathNotFound, OperationNotFound):
        if status not in (401, 404, 405):
            raise


class CheckedClient(FlaskClient):
    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check(response.request, response)
        return response
