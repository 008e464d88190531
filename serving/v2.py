"""The Open Inference Protocol (KServe V2, Triton's HTTP/REST API) under /v2, beside /predict.

A thin layer, like serving.api: it reads V2 requests (serving.v2_codec), turns them into
the model input with the same preprocessing as /predict, calls the same predictor and
writes V2 responses. Names, datatypes and shapes come from the ONNX session. Errors
under /v2 are `{"error": "<message>"}` (serving.errors).
Extensions: binary tensor data (both directions) and classification.
"""

from __future__ import annotations

import base64
import binascii
from functools import cache
from importlib import metadata

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request

from serving.dataplane import batch_limit, current_predictor, request_body
from serving.errors import ApiError
from serving.model import Predictor
from serving.preprocess import InputError, image_to_input
from serving.v2_codec import ONNX_TYPES, TensorError, decode_input, encode_output, encode_response, split_body

bp = Blueprint("v2", __name__, url_prefix="/v2")

PLATFORM = "onnxruntime_onnx"  # Triton's name for what runs the model
EXTENSIONS = ["binary_tensor_data", "classification"]  # only what this module implements
IMAGE_BYTES = "image_bytes"  # BYTES [N]: encoded image files, decoded as /predict decodes them
HEADER_LENGTH = "Inference-Header-Content-Length"


@bp.get("")
def server_metadata():
    return jsonify(name="fashion-softmax", version=_server_version(), extensions=EXTENSIONS)


@bp.get("/health/live")
def live():
    return jsonify(live=True)


@bp.get("/health/ready")
def ready():
    current_predictor()  # 503 without a model
    return jsonify(ready=True)


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None):
    predictor = _model(name, version)
    return jsonify(
        name=predictor.name,
        versions=[str(predictor.repository_version)],
        platform=PLATFORM,
        inputs=[_describe(node) for node in predictor.session.get_inputs()],
        outputs=[_describe(node) for node in predictor.session.get_outputs() if node.name == predictor.output_name],
    )


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None):
    predictor = _model(name, version)
    return jsonify(name=predictor.name, ready=True)


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None):
    predictor = _model(name, version)
    # any Content-Type (tritonclient sends none): the body is JSON, then binary tensors if the header says so
    try:
        header, binary = split_body(request_body(), request.headers.get(HEADER_LENGTH))
        inputs = header.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != 1:
            raise TensorError(f'"inputs" must list one tensor: {predictor.input_name!r} or {IMAGE_BYTES!r}')
        tensor, _ = decode_input(inputs[0], binary, 0)
    except TensorError as error:
        raise ApiError(400, "bad_tensor", str(error)) from error
    response = {"model_name": predictor.name, "model_version": str(predictor.repository_version)}
    if "id" in header:
        if not isinstance(header["id"], str):
            raise ApiError(400, "bad_id", f'"id" must be a string, not {header["id"]!r}')
        response["id"] = header["id"]
    parameters = _object(header, "parameters")
    requested = _requested_outputs(header, predictor, parameters.get("binary_data_output", False) is True)
    pixels = _pixels(tensor, predictor, _invert(parameters))  # (N, 1, side, side) float32
    probabilities = predictor.predict(pixels)  # (N, classes)
    current_app.extensions["metrics"].images.inc(len(pixels))

    response["outputs"], raw = [], []
    for classes, binary in requested:
        tensor, data = _output(predictor, probabilities, classes, binary)
        response["outputs"].append(tensor)
        raw += [data] if data is not None else []
    body, headers = encode_response(response, raw)
    return Response(body, headers=headers)


def _model(name: str, version: str | None) -> Predictor:
    predictor = current_predictor()  # the current one: 503 without a model
    if name != predictor.name:
        raise ApiError(404, "unknown_model", f"unknown model {name!r}: this server serves {predictor.name!r}")
    if version is not None and version != str(predictor.repository_version):
        raise ApiError(
            404, "unknown_version", f"model {name!r} has no version {version!r}; it serves version "
            f"{predictor.repository_version}"
        )  # fmt: skip
    return predictor


def _describe(node) -> dict:
    """An onnxruntime NodeArg -> V2 tensor metadata; named (dynamic) dimensions are -1."""
    shape = [dim if isinstance(dim, int) else -1 for dim in node.shape]
    return {"name": node.name, "datatype": ONNX_TYPES.get(node.type, node.type), "shape": shape}


def _pixels(tensor, predictor: Predictor, invert: bool | None) -> np.ndarray:
    """The request's tensor -> the model input (N, 1, side, side) float32 in the artifact's value range."""
    (graph_input,) = predictor.session.get_inputs()
    if tensor.name == IMAGE_BYTES:
        if tensor.datatype != "BYTES" or len(tensor.shape) != 1:
            raise ApiError(400, "bad_tensor", f"input {IMAGE_BYTES!r} must be BYTES of shape [N] (encoded images)")
        _check_batch(tensor.shape[0])
        files = [data if tensor.binary else _base64(data, index) for index, data in enumerate(tensor.array)]
        try:
            images = [image_to_input(d, invert, current_app.extensions["limits"], predictor.target) for d in files]
        except InputError as error:
            raise ApiError(error.status, error.code, f"input {IMAGE_BYTES!r}: {error.message}") from error
        return np.stack(images)[:, None]
    if tensor.name != predictor.input_name:
        raise ApiError(
            400, "unknown_input", f"unknown input {tensor.name!r}: send {predictor.input_name!r} or {IMAGE_BYTES!r}"
        )
    expected = [dim if isinstance(dim, int) else -1 for dim in graph_input.shape]
    if len(tensor.shape) != len(expected) or any(e not in (-1, s) for e, s in zip(expected, tensor.shape, strict=True)):
        raise ApiError(
            400, "wrong_shape", f"input {tensor.name!r} must have shape {expected}, not {list(tensor.shape)}"
        )
    _check_batch(tensor.shape[0])
    low, high = predictor.target.value_range
    if tensor.datatype == "UINT8":  # 8-bit pixels: mapped to the model's range as /predict maps decoded images
        return np.ascontiguousarray(predictor.target.from_8bit(tensor.array.astype(np.float32)), dtype=np.float32)
    if tensor.datatype != "FP32":
        raise ApiError(
            400, "bad_datatype", f"input {tensor.name!r} must be FP32 (or UINT8 pixels), not {tensor.datatype}"
        )
    pixels = tensor.array  # already the model input: the artifact's range, light garment on black
    if not np.isfinite(pixels).all():
        raise ApiError(400, "bad_pixels", f"input {tensor.name!r}: values must be finite (no NaN or Infinity)")
    if pixels.size and (pixels.min() < low or pixels.max() > high):
        message = f"input {tensor.name!r}: values must be in {low:g}-{high:g}; got {pixels.min():g} to {pixels.max():g}"
        raise ApiError(400, "bad_pixels", message)
    return pixels


def _check_batch(count: int) -> None:
    limit = batch_limit()  # configured, or the artifact's
    if count == 0:
        raise ApiError(400, "empty_batch", "no images in the request (batch size 0)")
    if count > limit:
        raise ApiError(413, "batch_too_large", f"{count} images in one request; the limit is {limit}")


def _base64(data: bytes, index: int) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ApiError(400, "bad_base64", f"input {IMAGE_BYTES!r} element {index}: not valid base64") from error


def _invert(parameters: dict) -> bool | None:
    value = parameters.get("invert", "auto")
    if value not in (True, False, "auto"):
        raise ApiError(400, "bad_parameter", f'parameter "invert" must be true, false or "auto", not {value!r}')
    return None if value == "auto" else value


def _object(container: dict, key: str) -> dict:
    value = container.get(key) or {}
    if not isinstance(value, dict):
        raise ApiError(400, "bad_parameter", f'"{key}" must be an object')
    return value


def _requested_outputs(header: dict, predictor: Predictor, binary_default: bool) -> list[tuple[int | None, bool]]:
    """Per output to send: (k for the classification extension or None, binary or not); all checked up front."""
    requested = header.get("outputs")
    if requested is None:
        return [(None, binary_default)]
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ApiError(400, "bad_outputs", '"outputs" must be a list of objects, each with a "name"')
    found = []
    for output in requested:
        if output.get("name") != predictor.output_name:
            raise ApiError(400, "unknown_output", f"unknown output {output.get('name')!r}: {predictor.output_name!r}")
        options = _object(output, "parameters")
        k = options.get("classification")
        if k is not None and (type(k) is not int or k < 1):
            raise ApiError(400, "bad_parameter", f'"classification" must be a positive integer, not {k!r}')
        found.append((k, options.get("binary_data", binary_default) is True))
    return found


def _output(predictor: Predictor, probabilities: np.ndarray, k: int | None, binary: bool) -> tuple[dict, bytes | None]:
    """The probabilities as they are, or with {"classification": k} the top k as BYTES "score:index:label"."""
    if k is None:
        (node,) = [node for node in predictor.session.get_outputs() if node.name == predictor.output_name]
        return encode_output(predictor.output_name, ONNX_TYPES[node.type], probabilities, binary)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]  # (N, k) class ids, highest first
    # Triton's format: std::to_string(score) (printf "%f") ":" class id ":" label
    labels = predictor.labels
    rows = [[f"{float(row[i]):f}:{i}:{labels[i]}" for i in ids] for row, ids in zip(probabilities, top, strict=True)]
    return encode_output(predictor.output_name, "BYTES", np.array(rows, dtype=object), binary)


@cache
def _server_version() -> str:
    try:
        return metadata.version("fashion-softmax")
    except metadata.PackageNotFoundError:
        return "unknown"
