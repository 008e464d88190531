"""Request bodies of the Open Inference Protocol (V2), for tests and bench/bench_serve.py's V2 scenarios.

The binary tensor extension: the JSON header, then the tensors' raw bytes, and the header's length in an
Inference-Header-Content-Length header on the request. The scenario builders return (body, Content-Type,
extra headers, images per request).
"""

from __future__ import annotations

import json
import struct

import numpy as np

MODEL = "fashion-softmax"
INFER = f"/v2/models/{MODEL}/infer"


def binary_body(header: dict, raw: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """The JSON header followed by the raw tensors, and the request header that says where the JSON ends."""
    text = json.dumps(header).encode()
    return text + b"".join(raw), {"Inference-Header-Content-Length": str(len(text))}


def bytes_elements(files: list[bytes]) -> bytes:
    """A BYTES tensor's raw data: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(data)) + data for data in files)


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
    body, headers = binary_body({"inputs": [tensor], "parameters": {"binary_data_output": True}}, [raw])
    return body, "application/octet-stream", headers, len(pixels)


def binary_image_bytes(images: list[bytes]) -> tuple[bytes, str, dict[str, str], int]:
    """Encoded image files -> a binary BYTES tensor `image_bytes` [N]."""
    raw = bytes_elements(images)
    tensor = {"name": "image_bytes", "datatype": "BYTES", "shape": [len(images)],
              "parameters": {"binary_data_size": len(raw)}}  # fmt: skip
    body, headers = binary_body({"inputs": [tensor], "parameters": {"binary_data_output": True}}, [raw])
    return body, "application/octet-stream", headers, len(images)
