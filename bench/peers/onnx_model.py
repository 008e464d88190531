"""What every peer's server does with model.onnx, so that only the serving framework differs between them:
one onnxruntime session with 1 thread, a PNG body to pixels, the V2 JSON tensor to pixels and back.

Runs inside each peer's own virtual environment: the standard library, NumPy, onnxruntime and Pillow only.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import onnxruntime
from PIL import Image

MODEL_NAME = "fashion-softmax"  # the name the V2 routes of every server use
V2_INFER = f"/v2/models/{MODEL_NAME}/infer"


class OnnxModel:
    """model.onnx in onnxruntime, 1 intra-op and 1 inter-op thread (as `python -m serving` runs it per worker).

    Picklable: the session is dropped when pickled and opened again when unpickled (servers that hand the
    model to worker processes pickle it).
    """

    def __init__(self, path: str):
        self.path = path
        self._open()

    def _open(self) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(self.path, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name  # probabilities

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.path = state["path"]
        self._open()

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) float32 pixels 0-255 -> (N, 10) float32 probabilities."""
        (probabilities,) = self.session.run([self.output_name], {self.input_name: pixels})
        return probabilities


def png_pixels(body: bytes) -> np.ndarray:
    """A 28x28 grayscale image file -> (1, 1, 28, 28) float32, light garment on black as the model takes it."""
    image = Image.open(io.BytesIO(body)).convert("L")
    return np.asarray(image, dtype=np.float32)[None, None]


def v2_pixels(request: dict) -> np.ndarray:
    """A V2 JSON request's first input (FP32, data flat or nested) -> an array of its shape, float32."""
    tensor = request["inputs"][0]
    return np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])


def v2_answer(probabilities: np.ndarray) -> dict:
    """(N, 10) probabilities -> a V2 JSON response with one FP32 output."""
    output = {**_v2_output(probabilities), "data": probabilities.ravel().tolist()}
    return {"model_name": MODEL_NAME, "outputs": [output]}


def v2_binary_answer(probabilities: np.ndarray) -> tuple[dict, bytes]:
    """(N, 10) probabilities -> a V2 response with the binary extension: its JSON part, and the raw little-endian
    FP32 data that follows it."""
    raw = probabilities.astype("<f4").tobytes()
    output = {**_v2_output(probabilities), "parameters": {"binary_data_size": len(raw)}}
    return {"model_name": MODEL_NAME, "outputs": [output]}, raw


def _v2_output(probabilities: np.ndarray) -> dict:
    return {"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape)}


def png_answer(probabilities: np.ndarray) -> dict:
    """(N, 10) probabilities -> the answer to a raw PNG body."""
    return {"probabilities": probabilities.tolist()}


def arguments(description: str) -> argparse.Namespace:
    """The command line every peer's server script takes: the model file, the port, the worker processes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, help="path of model.onnx")
    parser.add_argument("--port", type=int, required=True, help="HTTP port on 127.0.0.1")
    parser.add_argument("--workers", type=int, default=2, help="worker processes, where the server has them")
    return parser.parse_args()
