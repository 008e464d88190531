"""What the service's answers are checked against: the exported model run directly in onnxruntime."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image


def model_outputs(model_dir: Path, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """model.onnx on pixel arrays, (N, 28, 28) or (28, 28) in 0-255, as they are -> every output by name:
    probabilities float32 (N, 10), novelty float32 (N,), in_distribution bool (N,)."""
    session = onnxruntime.InferenceSession(str(Path(model_dir) / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    found = session.run(names, {"image": np.asarray(pixels, dtype=np.float32).reshape(-1, 1, 28, 28)})
    return dict(zip(names, found, strict=True))


def model_probabilities(model_dir: Path, pixels: np.ndarray) -> np.ndarray:
    """model.onnx's probabilities, float32 (N, 10) (see model_outputs)."""
    return model_outputs(model_dir, pixels)["probabilities"]


def decoded(files: list[bytes]) -> np.ndarray:
    """28x28 image files -> their grayscale pixels, (N, 28, 28) uint8."""
    return np.stack([np.asarray(Image.open(io.BytesIO(data)).convert("L")) for data in files])


def answered_probabilities(body: dict) -> np.ndarray:
    """A /predict answer's probabilities, (N, 10), in class-id order."""
    return np.array([list(prediction["probabilities"].values()) for prediction in body["predictions"]])
