"""The service's one error type, and the one place that turns errors into HTTP answers.

Every layer raises `ServiceError` with a `code` (the pure layers their own subclasses: preprocessing's
`InputError`, the V2 codec's `TensorError`); `STATUS` maps codes to HTTP statuses, here only. Bodies are
`{"error": {"code": ..., "message": ...}}` on the native routes and `{"error": "<message>"}` under /v2 (the
Open Inference Protocol's format, which its clients read). Werkzeug's own errors (404, 405, 408, 413...)
get the same bodies.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# HTTP status -> the error codes answered with it: 4xx for what the client can change, 503 while it cannot be served
CODES = {
    400: ("bad_image", "empty_image", "bad_json", "bad_base64", "bad_pixels", "empty_batch", "no_file",
          "bad_multipart", "bad_parameter", "bad_tensor", "bad_id", "bad_outputs", "unknown_input",
          "unknown_output", "bad_datatype", "wrong_tensor_shape"),
    401: ("unauthorized",),
    404: ("not_found", "unknown_model", "unknown_version"),
    413: ("batch_too_large", "image_too_large"),
    415: ("unsupported_media_type",),
    422: ("wrong_shape",),
    503: ("model_not_loaded",),
}  # fmt: skip
STATUS = {code: status for status, codes in CODES.items() for code in codes}


class ServiceError(Exception):
    """A request the service refuses: `code` (a key of STATUS) says why, `message` what to change."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None):
        if code not in STATUS:
            raise ValueError(f"no HTTP status for error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}  # sent with the answer (401: WWW-Authenticate)

    @property
    def status(self) -> int:
        return STATUS[self.code]


def register_error_handlers(app) -> None:
    """Every ServiceError, HTTPException and unexpected exception of `app` answered as JSON."""
    # Flask is imported here, not above: the pure layers import this module for ServiceError, and the
    # training job uses serving.preprocess without Flask installed.
    from flask import jsonify, request
    from werkzeug.exceptions import HTTPException, InternalServerError

    def answer(status: int, code: str, message: str):
        if request.path == "/v2" or request.path.startswith("/v2/"):  # by path: unknown /v2 routes too
            return jsonify(error=message), status
        return jsonify(error={"code": code, "message": message}), status

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        response, status = answer(error.status, error.code, error.message)
        response.headers.update(error.headers)
        return response, status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        response, status = answer(error.code or 500, code, error.description or error.name)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response, status

    @app.errorhandler(Exception)
    def unexpected(error: Exception):  # a bug of ours: log it whole, tell the client little
        log.exception("unhandled error", exc_info=error)
        return answer(500, "internal_error", InternalServerError.description)
