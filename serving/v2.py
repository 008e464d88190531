"""The Open Inference Protocol (KServe V2, Triton's HTTP/REST API) under /v2, beside /predict.

HTTP in and out only: V2 bodies are read by serving.v2_codec into an InferenceRequest for the data plane
(serving.dataplane), and its Inference is written back as V2 tensors. Names, datatypes and shapes come
from the ONNX session. Extensions: binary tensor data (both directions), classification, and the model
repository index.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request

from serving import json_body
from serving.dataplane import InferenceRequest
from serving.errors import ServiceError
from serving.http_io import image_file, request_body, version_parameter, versioned
from serving.model import IN_DISTRIBUTION, NOVELTY, OUTPUT_NAME, OUTPUTS, Outputs, Predictor
from serving.v2_codec import ONNX_TYPES, TensorError, decode_input, encode_output, encode_response, split_body

bp = Blueprint("v2", __name__, url_prefix="/v2")

PLATFORM = "onnxruntime_onnx"  # Triton's name for what runs the model
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]  # only what this module implements
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
    current_app.extensions["dataplane"].model()  # 503 without a model
    return jsonify(ready=True)


@bp.post("/repository/index")
def repository_index():
    """Every version in the model repository and its state; {"ready": true} lists only the loaded ones."""
    body = request_body()
    options = _json_object(body) if body.strip() else {}
    ready_only = options.get("ready", False)
    if not isinstance(ready_only, bool):
        raise ServiceError("bad_parameter", f'"ready" must be true or false, not {ready_only!r}')
    rows = current_app.extensions["repository"].index()
    return jsonify([row for row in rows if row["state"] == "READY" or not ready_only])


@bp.get("/models/<name>")
@bp.get("/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None):
    predictor = _model(name, version)
    served = current_app.extensions["repository"].served
    return versioned(
        jsonify(
            name=predictor.name,
            versions=[str(number) for number in sorted(served.versions)],
            platform=PLATFORM,
            inputs=[_describe(node) for node in predictor.session.get_inputs()],
            outputs=[_describe(node) for node in predictor.session.get_outputs()],
        ),
        predictor,
    )


@bp.get("/models/<name>/ready")
@bp.get("/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None):
    predictor = _model(name, version)
    return versioned(jsonify(name=predictor.name, ready=True), predictor)


@bp.post("/models/<name>/infer")
@bp.post("/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None):
    # any Content-Type (tritonclient sends none): the body is JSON, then binary tensors if the header says so
    header, binary = split_body(request_body(), request.headers.get(HEADER_LENGTH))
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise TensorError(f'"inputs" must list one tensor: the model input or {IMAGE_BYTES!r}')
    tensor, _ = decode_input(inputs[0], binary, 0)
    if "id" in header and not isinstance(header["id"], str):
        raise ServiceError("bad_id", f'"id" must be a string, not {header["id"]!r}')
    parameters = _object(header, "parameters")
    binary_default = parameters.get("binary_data_output", False) is True
    requested = _requested_outputs(header, binary_default)
    inference = current_app.extensions["dataplane"].infer(
        _inference_request(tensor, _invert(parameters), name, version_parameter(version))
    )
    predictor = inference.predictor
    response = {"model_name": predictor.name, "model_version": str(predictor.repository_version)}
    if "id" in header:
        response["id"] = header["id"]
    response["outputs"], raw = [], []
    for output_name, classes, binary in requested or [(name, None, binary_default) for name in OUTPUTS]:
        tensor_json, data = _output(predictor, inference.outputs, output_name, classes, binary)
        response["outputs"].append(tensor_json)
        raw += [data] if data is not None else []
    body, headers = encode_response(response, raw)
    return versioned(Response(body, headers=headers), predictor)


def _inference_request(tensor, invert: bool | None, name: str, version: int | None) -> InferenceRequest:
    """A decoded V2 input -> the data plane's request: encoded images (image_bytes) or the model input."""
    if tensor.name == IMAGE_BYTES:
        if tensor.datatype != "BYTES" or len(tensor.shape) != 1:
            raise ServiceError("bad_tensor", f"input {IMAGE_BYTES!r} must be BYTES of shape [N] (encoded images)")
        files = [data if tensor.binary else image_file(data, f"{IMAGE_BYTES} element {i}")
                 for i, data in enumerate(tensor.array)]  # fmt: skip
        return InferenceRequest(images=files, invert=invert, version=version, model_name=name)
    if tensor.datatype not in ("FP32", "UINT8"):
        raise ServiceError(
            "bad_datatype", f"input {tensor.name!r} must be FP32 (or UINT8 pixels), not {tensor.datatype}"
        )
    return InferenceRequest(tensor=tensor.array, version=version, model_name=name, input_name=tensor.name)


def _model(name: str, version: str | None) -> Predictor:
    return current_app.extensions["dataplane"].model(name, version_parameter(version))


def _describe(node) -> dict:
    """An onnxruntime NodeArg -> V2 tensor metadata; named (dynamic) dimensions are -1."""
    shape = [dim if isinstance(dim, int) else -1 for dim in node.shape]
    return {"name": node.name, "datatype": ONNX_TYPES.get(node.type, node.type), "shape": shape}


def _invert(parameters: dict) -> bool | None:
    value = parameters.get("invert", "auto")
    if value not in (True, False, "auto"):
        raise ServiceError("bad_parameter", f'parameter "invert" must be true, false or "auto", not {value!r}')
    return None if value == "auto" else value


def _object(container: dict, key: str) -> dict:
    value = container.get(key) or {}
    if not isinstance(value, dict):
        raise ServiceError("bad_parameter", f'"{key}" must be an object')
    return value


def _json_object(body: bytes) -> dict:
    try:
        document = json_body.loads(body)
    except ValueError as error:
        raise TensorError(f"the request is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise TensorError("the request must be a JSON object")
    return document


def _requested_outputs(header: dict, binary_default: bool) -> list[tuple[str, int | None, bool]]:
    """Per output asked for: (name, k for the classification extension or None, binary or not), checked up front;
    none asked for: an empty list (every output is sent, as Triton does)."""
    requested = header.get("outputs")
    if requested is None:
        return []
    if not isinstance(requested, list) or not all(isinstance(o, dict) for o in requested):
        raise ServiceError("bad_outputs", '"outputs" must be a list of objects, each with a "name"')
    found = []
    for output in requested:
        name, options = output.get("name"), _object(output, "parameters")
        if name not in OUTPUTS:
            raise ServiceError("unknown_output", f"unknown output {name!r}: the model's are {', '.join(OUTPUTS)}")
        k = options.get("classification")
        if k is not None and (type(k) is not int or k < 1):
            raise ServiceError("bad_parameter", f'"classification" must be a positive integer, not {k!r}')
        if k is not None and name != OUTPUT_NAME:
            raise ServiceError("bad_parameter", f'"classification" applies to {OUTPUT_NAME!r} only, not {name!r}')
        found.append((name, k, options.get("binary_data", binary_default) is True))
    return found


def _output(
    predictor: Predictor, outputs: Outputs, name: str, k: int | None, binary: bool
) -> tuple[dict, bytes | None]:
    """One output tensor as it is, or with {"classification": k} the top k probabilities as BYTES
    "score:index:label"."""
    if name == NOVELTY:
        return encode_output(name, "FP32", outputs.novelty, binary)
    if name == IN_DISTRIBUTION:
        return encode_output(name, "BOOL", outputs.in_distribution, binary)
    probabilities = outputs.probabilities
    if k is None:
        return encode_output(name, "FP32", probabilities, binary)
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]  # (N, k) class ids, highest first
    # Triton's format: std::to_string(score) (printf "%f") ":" class id ":" label
    labels = predictor.labels
    rows = [[f"{float(row[i]):f}:{i}:{labels[i]}" for i in ids] for row, ids in zip(probabilities, top, strict=True)]
    return encode_output(name, "BYTES", np.array(rows, dtype=object), binary)


@cache
def _server_version() -> str:
    try:
        return metadata.version("fashion-softmax")
    except metadata.PackageNotFoundError:
        return "unknown"
