"""Every response Flask's test client gets in tests/serving is checked against serving/openapi.yaml (openapi-core).

tests/serving/conftest.py installs `CheckedClient` for all apps; a response whose status, content type, headers
or body the document does not allow fails the test that got it. Only a 404 or 405 for a path or method the
document does not have (the not-found tests) is let through.
"""

from __future__ import annotations

from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound

from serving.openapi import document

SPEC = OpenAPI.from_dict(document())
checked: list[tuple[str, str, int]] = []  # (method, path, status) of every response checked


class SentRequest(WerkzeugOpenAPIRequest):
    """The request as the test client sent it; its body was read by the app (responses do not depend on it)."""

    @property
    def body(self) -> bytes:
        return b""


def check(request, response) -> None:
    """Raise if the document does not describe this response to this request."""
    try:
        SPEC.validate_response(SentRequest(request), WerkzeugOpenAPIResponse(response))
    except (PathNotFound, OperationNotFound):
        if response.status_code not in (404, 405):
            raise
    checked.append((request.method, request.path, response.status_code))


class CheckedClient(FlaskClient):
    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        check(response.request, response)
        return response
