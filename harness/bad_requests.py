"""Requests the service must refuse, with the status and error it must answer: the native routes
(BAD_REQUESTS: code) and the Open Inference Protocol (BAD_V2: words of the message). Sent through Flask's
test client (tests/serving/test_api.py, test_v2.py) and over real HTTP to the production server
(test_server.py, test_v2_clients.py).
"""

from __future__ import annotations

import base64
import json

import numpy as np

from harness.images import GARMENTS, multipart, png
from harness.v2_bodies import INFER


def big_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 255, size=(2000, 2000), dtype=np.uint8)
    return png(noise)


SMALL = png(GARMENTS[1])
BAD_REQUESTS = {
    # id: (method, path, body, content type, status, error code)
    "undecodable-image": ("POST", "/predict", b"GIF89a not really", "image/gif", 400, "bad_image"),
    "truncated-image": ("POST", "/predict", SMALL[: len(SMALL) // 2], "image/png", 400, "bad_image"),
    "empty-image": ("POST", "/predict", b"", "image/png", 400, "empty_image"),
    "malformed-json": ("POST", "/predict", b'{"instances": [', "application/json", 400, "bad_json"),
    "json-nested-too-deep": ("POST", "/predict", b"[" * 100_000, "application/json", 400, "bad_json"),
    "json-not-instances": ("POST", "/predict", b'{"images": []}', "application/json", 400, "bad_json"),
    "bad-base64": ("POST", "/predict", b'{"instances": [{"b64": "***"}]}', "application/json", 400, "bad_base64"),
    "b64-not-image": (
        "POST", "/predict", json.dumps({"instances": [{"b64": base64.b64encode(b"hello").decode()}]}).encode(),
        "application/json", 400, "bad_image",
    ),
    "nan-pixels": ("POST", "/predict", b'{"instances": [[' + b",".join([b"NaN"] * 784) + b"]]}",
                   "application/json", 400, "bad_pixels"),
    "pixels-out-of-range": ("POST", "/predict", json.dumps({"instances": [[300] * 784]}).encode(),
                            "application/json", 400, "bad_pixels"),
    "empty-batch": ("POST", "/predict", b'{"instances": []}', "application/json", 400, "empty_batch"),
    "multipart-without-file": ("POST", "/predict", *multipart([("note", None, b"hello")]), 400, "no_file"),
    "multipart-without-boundary": ("POST", "/predict", b"--x\r\n", "multipart/form-data", 400, "bad_multipart"),
    "multipart-truncated": ("POST", "/predict", multipart([("a", "a.png", SMALL)])[0][:80],
                            multipart([])[1], 400, "bad_multipart"),
    "bad-invert": ("POST", "/predict?invert=maybe", SMALL, "image/png", 400, "bad_parameter"),
    "bad-return-input": ("POST", "/predict?return_input=maybe", SMALL, "image/png", 400, "bad_parameter"),
    "body-too-large": ("POST", "/predict", b"\0" * (10 * 1024 * 1024 + 1), "image/png",
                       413, "request_entity_too_large"),
    "batch-too-large": ("POST", "/predict", json.dumps({"instances": [[0] * 784] * 257}).encode(),
                        "application/json", 413, "batch_too_large"),
    "image-too-many-pixels": ("POST", "/predict", big_png(), "image/png", 413, "image_too_large"),
    "unsupported-type": ("POST", "/predict", b"<xml/>", "application/xml", 415, "unsupported_media_type"),
    "text-plain": ("POST", "/predict", b"hello", "text/plain", 415, "unsupported_media_type"),
    "wrong-shape": ("POST", "/predict", json.dumps({"instances": [[[0] * 28] * 27]}).encode(),
                    "application/json", 422, "wrong_shape"),
    "ragged-rows": ("POST", "/predict", json.dumps({"instances": [[[0] * 28] * 27 + [[0] * 3]]}).encode(),
                    "application/json", 422, "wrong_shape"),
    "scalar-instance": ("POST", "/predict", b'{"instances": [42]}', "application/json", 422, "wrong_shape"),
    "unknown-route": ("GET", "/nowhere", b"", None, 404, "not_found"),
    "wrong-method": ("GET", "/predict", b"", None, 405, "method_not_allowed"),
    "delete-health": ("DELETE", "/health", b"", None, 405, "method_not_allowed"),
}  # fmt: skip


def image_tensor(shape, data, datatype="FP32", **request) -> bytes:
    tensor = {"name": "image", "datatype": datatype, "shape": shape, "data": data}
    return json.dumps({"inputs": [tensor], **request}).encode()


ZEROS = [0.0] * 784
TOP_0 = {"name": "probabilities", "parameters": {"classification": 0}}
BYTES_3 = (  # shape [1], then three empty elements
    b'{"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 12}}]}'
)
SHORT_BINARY = (  # says 3136 bytes of binary data follow; 100 do
    b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], '
    b'"parameters": {"binary_data_size": 3136}}]}'
)
BAD_V2 = {
    # id: (method, path, body, extra headers, status, words the message has)
    "wrong-shape": ("POST", INFER, image_tensor([1, 784], ZEROS), {}, 400, "must have shape [-1, 1, 28, 28]"),
    "length-mismatch": ("POST", INFER, image_tensor([2, 1, 28, 28], ZEROS), {}, 400, "the shape needs 1568"),
    "ragged-data": ("POST", INFER, image_tensor([2, 1, 28, 28], [ZEROS, [0.0]]), {}, 400, "not an even array"),
    "unknown-datatype": ("POST", INFER, image_tensor([1, 1, 28, 28], ZEROS, "FP8"), {}, 400, "unknown datatype"),
    "datatype-a-list": ("POST", INFER, image_tensor([1, 1, 28, 28], ZEROS, [["FP32"]]), {}, 400, "unknown datatype"),
    "int32-datatype": ("POST", INFER, image_tensor([1, 1, 28, 28], [0] * 784, "INT32"), {}, 400, "must be FP32"),
    "out-of-range": ("POST", INFER, image_tensor([1, 1, 28, 28], [300.0] * 784), {}, 400, "values must be in 0-255"),
    "nan": ("POST", INFER, image_tensor([1, 1, 28, 28], [float("nan")] * 784), {}, 400, "finite"),
    "uint8-overflow": ("POST", INFER, image_tensor([1, 1, 28, 28], [256] * 784, "UINT8"), {}, 400, "UINT8"),
    "uint8-negative": ("POST", INFER, image_tensor([1, 1, 28, 28], [-1] * 784, "UINT8"), {}, 400, "in 0..255"),
    "uint8-floats": ("POST", INFER, image_tensor([1, 1, 28, 28], [0.5] * 784, "UINT8"), {}, 400, "float64 data"),
    "strings-as-fp32": ("POST", INFER, image_tensor([1, 1, 28, 28], ["1"] * 784), {}, 400, "not an even array"),
    "booleans-as-fp32": ("POST", INFER, image_tensor([1, 1, 28, 28], [True] * 784), {}, 400, "bool data"),
    "unknown-input": ("POST", INFER, b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1]}]}',
                      {}, 400, "unknown input 'x'"),
    "no-inputs": ("POST", INFER, b'{"inputs": []}', {}, 400, "must list one tensor"),
    "not-json": ("POST", INFER, b"{nope", {}, 400, "not valid JSON"),
    "nested-too-deep": ("POST", INFER, b"[" * 60_000, {}, 400, "not valid JSON"),
    "id-not-a-string": ("POST", INFER, image_tensor([1, 1, 28, 28], ZEROS, id=5), {}, 400, '"id" must be a string'),
    "more-bytes-elements": ("POST", INFER, BYTES_3 + b"\0" * 12, {"Inference-Header-Content-Length": str(len(BYTES_3))},
                            400, "more than the 1 elements"),
    "empty-batch": ("POST", INFER, image_tensor([0, 1, 28, 28], []), {}, 400, "no images"),
    "unknown-output": ("POST", INFER, image_tensor([1, 1, 28, 28], ZEROS, outputs=[{"name": "logits"}]), {}, 400,
                       "unknown output 'logits'"),
    "bad-classification": ("POST", INFER, image_tensor([1, 1, 28, 28], ZEROS, outputs=[TOP_0]), {}, 400,
                           "positive integer"),
    "header-longer-than-body": ("POST", INFER, b'{"inputs": []}', {"Inference-Header-Content-Length": "999"}, 400,
                                "the body has 14 bytes"),
    "binary-size-past-end": ("POST", INFER, SHORT_BINARY + b"\0" * 100,
                             {"Inference-Header-Content-Length": str(len(SHORT_BINARY))}, 400, "runs past"),
    "bytes-not-images": ("POST", INFER, b'{"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], '
                         b'"data": ["bm90IGFuIGltYWdl"]}]}', {}, 400, "not an image format"),
    "bytes-not-base64": ("POST", INFER, b'{"inputs": [{"name": "image_bytes", "datatype": "BYTES", "shape": [1], '
                         b'"data": ["***"]}]}', {}, 400, "not valid base64"),
    "too-many-images": ("POST", INFER, image_tensor([3, 1, 28, 28], ZEROS * 3), {}, 413, "the limit is 2"),
    "too-large-body": ("POST", INFER, b" " * 70_000, {}, 413, "exceeds"),
    "unknown-model": ("GET", "/v2/models/mnist", b"", {}, 404, "unknown model 'mnist'"),
    "unknown-model-infer": ("POST", "/v2/models/mnist/infer", image_tensor([1, 1, 28, 28], ZEROS), {}, 404, "mnist"),
    "unknown-version": ("POST", "/v2/models/fashion-softmax/versions/99/infer", image_tensor([1, 1, 28, 28], ZEROS),
                        {}, 404, "version 99 is not served"),
    "version-not-a-number": ("GET", "/v2/models/fashion-softmax/versions/latest", b"", {}, 404, "positive integers"),
    "unknown-route": ("GET", "/v2/repository/models", b"", {}, 404, "not found"),
    "wrong-method": ("GET", INFER, b"", {}, 405, "not allowed"),
}  # fmt: skip
