"""Request bodies for the Open Inference Protocol (V2) scenarios of bench/bench_serve.py.

Each builder returns (body bytes, Content-Type, extra headers, images per request); the
binary extension needs its Inference-Header-Content-Length header on every request.
"""

from __future__ import annotations

import json
import struct

import numpy as np

MODEL = "fashion-softmax"
INFER = f"/v2/models/{MODEL}/infer"


def json_fp32(pixels: np.ndarray) -> tuple[bytes, str, dict[str, str], int]:
    """pixels (N, 28, 28) uint8 -> a JSON FP32 tensor [N, 1, 28, 28], data flat."""
    tensor = {"name": "image", "datatype": "FP32", "shape": [len(pixels), 1, 28, 28],
              "data": pixels.astype(np.float32).ravel().tolist()}  # fmt: skip
    return json.dumps({"inputs": [tensor]}).encode(), "application/json", {}, len(pixels)


def binary_fp32(pixels: np.ndarray) -> tuple[bytes, str, dict[str, str], int]:
    """pixels (N, 28, 28) uint8 -> a binary FP32 tensor [N, 1, 28, 28]; the probabilities come back binary too."""
    raw = pixels.astype("<f4").tobytes()
    tensor = {"name": "image", "datatype": "FP32", "shape": [len(pixels), 1, 28, 28],
              "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    return _binary({"inputs": [tensor], "parameters": {"binary_data_output": True}}, raw, len(pixels))


def binary_image_bytes(images: list[bytes]) -> tuple[bytes, str, dict[str, str], int]:
    """Encoded image files -> a binary BYTES tensor `image_bytes` [N] (each a 4-byte length, then the file)."""
    raw = b"".join(struct.pack("<I", len(data)) + data for data in images)
    tensor = {"name": "image_bytes", "datatype": "BYTES", "shape": [len(images)],
              "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    return _binary({"inputs": [tensor], "parameters": {"binary_data_output": True}}, raw, len(images))


def _binary(header: dict, raw: bytes, count: int) -> tuple[bytes, str, dict[str, str], int]:
    text = json.dumps(header).encode()
    return text + raw, "application/octet-stream", {"Inference-Header-Content-Length": str(len(text))}, count
