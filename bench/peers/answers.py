"""The probabilities in an answer, whichever server gave it, and whether two answers agree.

probabilities(body, headers)   # V2 JSON or binary, our /predict, or {"probabilities": [[...]]} -> (N, 10)
disagreement(ours, theirs)     # None when equal within TOLERANCE, else what differs
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

TOLERANCE = 1e-5  # absolute, per probability: our /predict rounds to 1e-7, float32 carries ~1e-7 near 1
BINARY_HEADER = "inference-header-content-length"  # the V2 binary extension: the JSON part's length
DTYPES = {"FP32": "<f4", "FP64": "<f8"}


def probabilities(body: bytes, headers: Mapping[str, str]) -> np.ndarray:
    """An answer's probabilities as (N, classes) float64; ValueError when it carries none."""
    lengths = {name.lower(): value for name, value in headers.items() if name.lower() == BINARY_HEADER}
    split = int(lengths[BINARY_HEADER]) if lengths else len(body)
    try:
        answer = json.loads(body[:split])
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not JSON: {body[:80]!r}") from error
    if not isinstance(answer, dict):
        raise ValueError(f"not a JSON object: {body[:80]!r}")
    if "outputs" in answer:
        return _v2_output(answer["outputs"], body[split:])
    if "predictions" in answer:  # our /predict: each image's probabilities by label, in class order
        return np.array([list(row["probabilities"].values()) for row in answer["predictions"]], dtype=np.float64)
    if "probabilities" in answer:  # the peers' answer to a raw PNG (bench/peers/onnx_model.py)
        return np.array(answer["probabilities"], dtype=np.float64).reshape(-1, np.shape(answer["probabilities"])[-1])
    raise ValueError(f"no probabilities in the answer: {body[:80]!r}")


def _v2_output(outputs: list[dict], raw: bytes) -> np.ndarray:
    """The output named probabilities (else the first), from its JSON data or its part of the binary data."""
    index = next((i for i, output in enumerate(outputs) if output.get("name") == "probabilities"), 0)
    chosen, sizes = outputs[index], [(output.get("parameters") or {}).get("binary_data_size") for output in outputs]
    if sizes[index] is None:
        array = np.array(chosen["data"], dtype=np.float64)
    else:
        offset = sum(size or 0 for size in sizes[:index])  # binary parts follow the JSON in the outputs' order
        array = np.frombuffer(raw[offset : offset + sizes[index]], dtype=DTYPES[chosen["datatype"]]).astype(np.float64)
    return array.reshape(chosen["shape"]).reshape(-1, chosen["shape"][-1])


def disagreement(ours: np.ndarray, theirs: np.ndarray, tolerance: float = TOLERANCE) -> str | None:
    """None when both have one shape and every probability is within tolerance; else what differs."""
    if ours.shape != theirs.shape:
        return f"shape {list(theirs.shape)}, ours {list(ours.shape)}"
    worst = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    return None if worst <= tolerance else f"probabilities differ from ours by up to {worst:.2g} (> {tolerance:g})"
