"""The HTTP routes: /predict, /health, /ready, /metadata, /metrics. JSON in, JSON out.

This layer only reads requests into payloads and calls the predictor; image work
lives in serving.preprocess, the model in serving.model.
"""

from __future__ import annotations

import base64
import binascii
import io
import json

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from PIL import Image
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from serving.dataplane import batch_limit, current_predictor, request_body
from serving.errors import ApiError
from serving.preprocess import InputError, Target, array_to_input, image_to_input

bp = Blueprint("api", __name__)

SNIFFED_TYPES = ("", "application/octet-stream", "application/x-www-form-urlencoded")  # what curl sends by default


@bp.post("/predict")
def predict():
    predictor = current_predictor()
    if request.query_string:  # parsed only when there is one
        invert, return_input = _invert_parameter(), "return_input" in request.args and _flag("return_input")
    else:
        invert, return_input = None, False  # the defaults: invert=auto, return_input=false
    inputs = [_to_input(payload, invert, predictor.target) for payload in _payloads()]
    predictions = predictor.classify(np.stack(inputs)[:, None])  # (N, 1, side, side)
    if return_input:
        for prediction, pixels in zip(predictions, inputs, strict=True):
            prediction["input_png"] = _png_data_url(pixels, predictor.target)
    current_app.extensions["metrics"].images.inc(len(inputs))
    return jsonify(model={"name": predictor.name, "version": predictor.version}, predictions=predictions)


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    predictor = current_app.extensions["model"].predictor
    if predictor is None:
        return jsonify(status="not ready", reason=current_app.extensions.get("model_error")), 503
    return jsonify(status="ready", model={"name": predictor.name, "version": predictor.version})


@bp.get("/metadata")
def metadata():
    return jsonify({**current_predictor().metadata(), "reload": current_app.extensions["model"].status()})


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["metrics"].exposition()
    return Response(body, content_type=content_type)


def _invert_parameter() -> bool | None:
    value = request.args.get("invert", "auto").lower()
    choices = {"auto": None, "true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if value not in choices:
        raise ApiError(400, "bad_parameter", f"invert must be true, false or auto, not {value!r}")
    return choices[value]


def _flag(name: str) -> bool:
    value = request.args[name].lower()
    choices = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if value not in choices:
        raise ApiError(400, "bad_parameter", f"{name} must be true or false (1/0, yes/no), not {value!r}")
    return choices[value]


def _png_data_url(pixels: np.ndarray, target: Target) -> str:
    """(side, side) model input -> the 8-bit grayscale PNG the model saw (light on black), as a data: URL."""
    gray = np.clip(np.rint(target.to_8bit(pixels)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "PNG")  # 2-D uint8: mode "L"
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _payloads() -> list:
    """The request's images, in order: encoded bytes, or pixel lists from JSON."""
    content_type = request.mimetype
    if content_type == "multipart/form-data":
        payloads = _multipart_files(request_body(), request.mimetype_params.get("boundary"))
    elif content_type.startswith("image/"):
        payloads = [request_body()]
    elif content_type == "application/json" or content_type.endswith("+json"):
        payloads = _json_instances(request_body())
    elif content_type in SNIFFED_TYPES:
        body = request_body()
        payloads = _json_instances(body) if body.lstrip()[:1] in (b"{", b"[") else [body]
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"cannot read {content_type!r}: send an image (image/*), multipart/form-data files, "
            'or application/json {"instances": [...]}',
        )
    if not payloads:
        raise ApiError(400, "empty_batch", "no images in the request")
    limit = batch_limit()
    if len(payloads) > limit:
        raise ApiError(413, "batch_too_large", f"{len(payloads)} images in one request; the limit is {limit}")
    return payloads


def _multipart_files(body: bytes, boundary: str | None) -> list[bytes]:
    """The file parts of a multipart body in the order sent, by Werkzeug's sans-IO decoder.

    (request.files would group them by field name and wrap each in a FileStorage.)
    """
    if not boundary:
        raise ApiError(400, "bad_multipart", "the multipart Content-Type has no boundary parameter")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=batch_limit() + 16)
    decoder.receive_data(body)
    decoder.receive_data(None)  # the body is complete
    files, part, chunks = [], None, []
    try:
        while not isinstance(event := decoder.next_event(), Epilogue):
            if isinstance(event, NeedData):
                raise ApiError(400, "bad_multipart", "the multipart body ends before its closing boundary")
            if isinstance(event, (Field, File)):
                part, chunks = event, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data and isinstance(part, File):
                    files.append(b"".join(chunks))
    except ValueError as error:
        raise ApiError(400, "bad_multipart", f"the multipart body cannot be parsed: {error}") from error
    if not files:
        raise ApiError(
            400, "no_file", "the multipart body has no file part; send images as files (curl -F image=@x.png)"
        )
    return files


def _json_instances(body: bytes) -> list:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: [[[[... nested too deep
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise ApiError(400, "bad_json", 'expected {"instances": [...]}, each {"b64": "..."} or a 28x28 pixel array')
    return [_json_instance(instance, index) for index, instance in enumerate(document["instances"])]


def _json_instance(instance, index: int):
    if isinstance(instance, dict):
        encoded = instance.get("b64")
        if not isinstance(encoded, str):
            raise ApiError(400, "bad_json", f'instance {index}: an object must be {{"b64": "<base64 image>"}}')
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as error:
            raise ApiError(400, "bad_base64", f"instance {index}: not valid base64 ({error})") from error
    if isinstance(instance, list):
        return instance
    raise ApiError(422, "wrong_shape", f"instance {index}: expected a 28x28 pixel array or {{'b64': ...}}")


def _to_input(payload, invert: bool | None, target: Target) -> np.ndarray:
    try:
        if isinstance(payload, bytes):
            return image_to_input(payload, invert, current_app.extensions["limits"], target)
        return array_to_input(payload, invert, target)
    except InputError as error:
        raise ApiError(error.status, error.code, error.message) from error
