"""The native routes: POST /predict (image files, base64 or pixel arrays in; JSON out), /health, /ready,
/metadata, /metrics.

HTTP in and out only: a request becomes an InferenceRequest for the data plane (serving.dataplane),
its Inference becomes the JSON answer.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from PIL import Image
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from serving import json_body
from serving.dataplane import Inference, InferenceRequest
from serving.errors import ServiceError
from serving.http_io import boolean, image_file, request_body, version_parameter, versioned

bp = Blueprint("api", __name__)

SNIFFED_TYPES = ("", "application/octet-stream", "application/x-www-form-urlencoded")  # what curl sends by default


@bp.post("/predict")
def predict():
    dataplane = current_app.extensions["dataplane"]
    asked = request._get_current_object()  # one look-up behind Flask's proxy, not one per attribute
    invert, return_input, version = None, False, None  # the defaults: invert=auto, the current version
    if asked.query_string:  # parsed only when there is one
        args = asked.args
        invert = boolean("invert", args.get("invert", "auto"), auto=True)
        return_input = "return_input" in args and boolean("return_input", args["return_input"])
        version = version_parameter(args.get("version"))
    inference = dataplane.infer(InferenceRequest(_images(asked, dataplane.batch_ceiling()), None, invert, version))
    predictor = inference.predictor
    predictions = _predictions(inference)
    if return_input:
        for prediction, pixels in zip(predictions, inference.inputs, strict=True):
            prediction["input_png"] = _png_data_url(pixels[0], predictor.target)
    model = {"name": predictor.name, "version": predictor.version, "repository_version": predictor.repository_version,
             "novelty_threshold": float(f"{predictor.novelty_threshold:.6g}")}  # fmt: skip
    return versioned(jsonify(model=model, predictions=predictions), predictor)


@bp.get("/health")
def health():
    return jsonify(status="ok")


@bp.get("/ready")
def ready():
    predictor = current_app.extensions["repository"].predictor
    if predictor is None:
        return jsonify(status="not ready", reason=current_app.extensions["repository"].last_failure["reason"]), 503
    return jsonify(status="ready", model={"name": predictor.name, "version": predictor.version})


@bp.get("/metadata")
def metadata():
    predictor = current_app.extensions["dataplane"].model(version=version_parameter(request.args.get("version")))
    body = {**predictor.metadata(), "reload": current_app.extensions["repository"].status()}
    return versioned(jsonify(body), predictor)


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["metrics"].exposition()
    return Response(body, content_type=content_type)


def _predictions(inference: Inference) -> list[dict]:
    """Per image: the top label, its class id and probability, whether it looks like a garment the model knows
    (and its novelty score), and every label's probability (class-id order)."""
    labels, outputs = inference.predictor.labels, inference.outputs
    # rounded to 1e-7, about float32's resolution near 1: shorter JSON, nothing lost that the model has
    rows = outputs.probabilities.astype(np.float64).round(7).tolist()
    novelty = [float(f"{score:.6g}") for score in outputs.novelty.tolist()]  # float32's significant digits
    predictions = []
    for row, in_distribution, score in zip(rows, outputs.in_distribution.tolist(), novelty, strict=True):
        class_id = row.index(max(row))  # the first of equal maxima, as argmax
        predictions.append(
            {
                "label": labels[class_id],
                "class_id": class_id,
                "probability": row[class_id],
                "in_distribution": in_distribution,
                "novelty": score,
                "probabilities": dict(zip(labels, row, strict=True)),
            }
        )
    return predictions


def _png_data_url(pixels: np.ndarray, target) -> str:
    """(side, side) model input -> the 8-bit grayscale PNG the model saw (light on black), as a data: URL."""
    gray = np.clip(np.rint(target.to_8bit(pixels)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "PNG")  # 2-D uint8: mode "L"
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _images(asked, ceiling: int) -> list:
    """The request's images, in order: encoded files (bytes), or pixel lists from JSON."""
    content_type = asked.mimetype
    if content_type == "multipart/form-data":
        return _multipart_files(request_body(), asked.mimetype_params.get("boundary"), ceiling)
    if content_type.startswith("image/"):
        return [request_body()]
    if content_type == "application/json" or content_type.endswith("+json"):
        return _json_instances(request_body())
    if content_type in SNIFFED_TYPES:
        body = request_body()
        return _json_instances(body) if body.lstrip()[:1] in (b"{", b"[") else [body]
    raise ServiceError(
        "unsupported_media_type",
        f"cannot read {content_type!r}: send an image (image/*), multipart/form-data files, "
        'or application/json {"instances": [...]}',
    )


def _multipart_files(body: bytes, boundary: str | None, ceiling: int) -> list[bytes]:
    """The file parts of a multipart body in the order sent, by Werkzeug's sans-IO decoder.

    (request.files would group them by field name and wrap each in a FileStorage.) Parts beyond what any
    request may carry are not parsed: the data plane refuses such a batch anyway.
    """
    if not boundary:
        raise ServiceError("bad_multipart", "the multipart Content-Type has no boundary parameter")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=ceiling + 16)
    decoder.receive_data(body)
    decoder.receive_data(None)  # the body is complete
    files, part, chunks = [], None, []
    try:
        while not isinstance(event := decoder.next_event(), Epilogue):
            if isinstance(event, NeedData):
                raise ServiceError("bad_multipart", "the multipart body ends before its closing boundary")
            if isinstance(event, (Field, File)):
                part, chunks = event, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data and isinstance(part, File):
                    files.append(b"".join(chunks))
    except ValueError as error:
        raise ServiceError("bad_multipart", f"the multipart body cannot be parsed: {error}") from error
    if not files:
        raise ServiceError(
            "no_file", "the multipart body has no file part; send images as files (curl -F image=@x.png)"
        )
    return files


def _json_instances(body: bytes) -> list:
    try:
        document = json_body.loads(body)
    except ValueError as error:
        raise ServiceError("bad_json", f"the body is not valid JSON: {error}") from error
    if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
        raise ServiceError("bad_json", 'expected {"instances": [...]}, each {"b64": "..."} or a 28x28 pixel array')
    return [_json_instance(instance, index) for index, instance in enumerate(document["instances"])]


def _json_instance(instance, index: int):
    if isinstance(instance, dict):
        encoded = instance.get("b64")
        if not isinstance(encoded, str):
            raise ServiceError("bad_json", f'instance {index}: an object must be {{"b64": "<base64 image>"}}')
        return image_file(encoded, f"instance {index}")
    if isinstance(instance, list):
        return instance
    raise ServiceError("wrong_shape", f"instance {index}: expected a 28x28 pixel array or {{'b64': ...}}")
