"""Client errors as JSON with a 4xx status: `{"error": {"code": ..., "message": ...}}` for the native routes,
`{"error": "<message>"}` under /v2 (the Open Inference Protocol's format, which its clients read).

Routes raise `ApiError`; every `HTTPException` (404, 405, 413 from Werkzeug...) gets the same body.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A request the service refuses; `message` tells the client what to change."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str):
    if request.path == "/v2" or request.path.startswith("/v2/"):  # by path: unknown /v2 routes too
        return jsonify(error=message), status
    return jsonify(error={"code": code, "message": message}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        return error_response(error.status, error.code, error.message)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        response, status = error_response(error.code or 500, code, error.description or error.name)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # a bug of ours: log it whole, tell the client little
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal_error", InternalServerError.description)
