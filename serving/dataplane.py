"""What every route module shares: the model answering this request, and the per-request batch limit.

The native routes (serving.api) and the Open Inference Protocol routes (serving.v2) both call these,
so a reload, a missing model or a limit behaves the same on either surface.
"""

from __future__ import annotations

import io

from flask import current_app, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from serving.errors import ApiError
from serving.model import Predictor


def current_predictor() -> Predictor:
    """The model that answers this request, read once: a reload swaps in a new one for later requests."""
    predictor = current_app.extensions["model"].predictor
    if predictor is None:
        raise ApiError(503, "model_not_loaded", f"no model loaded: {current_app.extensions.get('model_error')}")
    g.model_version = predictor.version
    return predictor


def request_body() -> bytes:
    """The whole request body, its length checked against MAX_CONTENT_LENGTH (413 above).

    Behind serving/rsgi.py the body is already complete, in memory (a BytesIO that the server says ends
    with the body: wsgi.input_terminated), with its length: it is read as it is. Anything else (a body
    still arriving from a socket, one given up on, a chunked one) goes through Werkzeug's limited stream,
    whose wrapping costs more than the rest of reading a small image (bench/profile_request.py).
    """
    length, stream = request.content_length, request.input_stream
    in_memory = request.environ.get("wsgi.input_terminated") and isinstance(stream, io.BytesIO)
    if length is None or not in_memory:
        return request.get_data(cache=False)
    if request.max_content_length is not None and length > request.max_content_length:
        raise RequestEntityTooLarge()
    return stream.read(length)


def batch_limit() -> int:
    """Images per request: FASHION_SOFTMAX_MAX_BATCH if set, else the limit the model was exported with."""
    return current_app.config.get("MAX_BATCH") or current_predictor().max_batch


def name_the_model_version(response):
    """after_request: every answer a model produced names its version (X-Model-Version); the body does too."""
    version = g.get("model_version")
    if version is not None:
        response.headers["X-Model-Version"] = version
    return response
