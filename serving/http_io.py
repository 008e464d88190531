"""What the route modules share to read a request and name the model in the answer.

The body (read whole, its length checked), yes/no values, base64 image files, and the X-Model-Version
header: one definition each, so /predict and /v2 cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import io

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from serving.errors import ServiceError
from serving.model import Predictor

BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def request_body() -> bytes:
    """The whole request body, its length checked against MAX_CONTENT_LENGTH (413 above).

    Behind serving/rsgi.py the body is already complete, in memory (a BytesIO that the server says ends
    with the body: wsgi.input_terminated), with its length: it is read as it is. Anything else (a body
    still arriving from a socket, one given up on, a chunked one) goes through Werkzeug's limited stream.
    """
    asked = request._get_current_object()  # one look-up behind Flask's proxy, not one per attribute
    length, stream = asked.content_length, asked.input_stream
    in_memory = asked.environ.get("wsgi.input_terminated") and isinstance(stream, io.BytesIO)
    if length is None or not in_memory:
        return asked.get_data(cache=False)
    limit = asked.max_content_length
    if limit is not None and length > limit:
        raise RequestEntityTooLarge()
    return stream.read(length)


def boolean(name: str, value: str, auto: bool = False) -> bool | None:
    """A yes/no value as people write it (true/false, 1/0, yes/no; any case); with `auto`, "auto" is None."""
    spelled = value.lower()
    if auto and spelled == "auto":
        return None
    if spelled not in BOOLEANS:
        choices = "true, false or auto" if auto else "true or false (1/0, yes/no)"
        raise ServiceError("bad_parameter", f"{name} must be {choices}, not {value!r}")
    return BOOLEANS[spelled]


def image_file(encoded: str | bytes, where: str) -> bytes:
    """A base64-encoded image file -> its bytes; `where` names it in the error ("instance 2")."""
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ServiceError("bad_base64", f"{where}: not valid base64 ({error})") from error


def versioned(response, predictor: Predictor):
    """Every answer a model produced names its version in X-Model-Version (the body names it too)."""
    response.headers["X-Model-Version"] = predictor.version
    return response


def version_parameter(value: str | None) -> int | None:
    """A model repository version as a client names it (a path segment, ?version=N), or None."""
    if value is None:
        return None
    if not value.isdigit() or not value.isascii() or int(value) < 1:
        raise ServiceError("unknown_version", f"model versions are positive integers, not {value!r}")
    return int(value)
