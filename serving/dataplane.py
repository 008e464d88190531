"""Inference for every surface: the one place that reads the model, checks the batch, preprocesses, predicts
(the classes and the novelty check, one onnxruntime run) and counts. Route modules (serving.api, serving.v2)
turn HTTP into an `InferenceRequest` and the `Inference` back into HTTP; nothing here knows about HTTP.

    inference = app.extensions["dataplane"].infer(InferenceRequest(images=[png_bytes]))
    inference.predictor.version, inference.outputs.probabilities   # (N, classes) float32
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from serving.errors import ServiceError
from serving.metrics import Metrics
from serving.model import Outputs, Predictor
from serving.preprocess import InputError, Limits, array_to_input, check_range, image_to_input
from serving.repository import ModelRepository


@dataclass(frozen=True)
class InferenceRequest:
    """What a client asked, decoded from its protocol: images, or the model input itself, and options."""

    # per image: an encoded file (bytes), or pixel values in the model's range (side x side, or flat)
    images: Sequence[bytes | list] = ()
    # or the model input as it is: (N, 1, side, side), float32 in the model's range or uint8 pixels 0-255
    tensor: np.ndarray | None = None
    invert: bool | None = None  # images only: None decides from the border (a light background is inverted)
    version: int | None = None  # a model repository version; None: the current one
    model_name: str | None = None  # when the client names the model (V2 does), it must be this one
    input_name: str | None = None  # when the client names the tensor (V2 does), it must be the model's input


@dataclass(frozen=True)
class Inference:
    predictor: Predictor  # the version that answered
    inputs: np.ndarray  # (N, 1, side, side) float32: what the model saw
    outputs: Outputs  # probabilities (N, classes), novelty (N,), in_distribution (N,)


class DataPlane:
    def __init__(self, repository: ModelRepository, limits: Limits, metrics: Metrics, max_batch: int | None = None):
        self.repository = repository
        self.limits = limits
        self.metrics = metrics
        self.max_batch = max_batch  # images per request; None: each model version's own limit

    def model(self, name: str | None = None, version: int | None = None) -> Predictor:
        """The served version asked for (the current one by default): the model is read here, once per request."""
        served = self.repository.served
        if served is None:
            reason = (self.repository.last_failure or {}).get("reason", "none was loaded")
            raise ServiceError("model_not_loaded", f"no model loaded: {reason}")
        if name is not None and name != served.current.name:
            raise ServiceError("unknown_model", f"unknown model {name!r}: this server serves {served.current.name!r}")
        return served.predictor(version)

    def batch_ceiling(self) -> int:
        """The most images any request may carry, before a model is chosen (bounds parsing work)."""
        if self.max_batch:
            return self.max_batch
        served = self.repository.served
        return max((p.max_batch for p in served.versions.values()), default=1) if served else 1

    def infer(self, request: InferenceRequest) -> Inference:
        predictor = self.model(request.model_name, request.version)
        count = len(request.tensor) if request.tensor is not None else len(request.images)
        limit = self.max_batch or predictor.max_batch
        if count == 0:
            raise ServiceError("empty_batch", "no images in the request")
        if count > limit:
            raise ServiceError("batch_too_large", f"{count} images in one request; the limit is {limit}")
        if request.tensor is not None:
            if request.input_name is not None and request.input_name != predictor.input_name:
                raise ServiceError("unknown_input", f"unknown input {request.input_name!r}: the model's is "
                                   f"{predictor.input_name!r} (or send encoded images)")  # fmt: skip
            inputs = _tensor_input(request.tensor, predictor)
        elif count == 1:
            inputs = self._image_input(request.images[0], 0, request.invert, predictor, count)[None, None]
        else:
            inputs = np.stack([self._image_input(item, i, request.invert, predictor, count)
                               for i, item in enumerate(request.images)])[:, None]  # fmt: skip
        outputs = predictor.predict(inputs)
        self.metrics.count_predictions(predictor, outputs)
        return Inference(predictor, inputs, outputs)

    def _image_input(self, item: bytes | list, index: int, invert: bool | None, predictor: Predictor, count: int):
        """One image -> (side, side) float32 model input; errors name the image when there are several."""
        try:
            if isinstance(item, bytes):
                return image_to_input(item, invert, self.limits, predictor.target)
            return array_to_input(item, invert, predictor.target)
        except InputError as error:
            if count == 1:
                raise
            raise InputError(error.code, f"image {index}: {error.message}") from error


def _tensor_input(tensor: np.ndarray, predictor: Predictor) -> np.ndarray:
    """The model input as sent: its shape checked against the graph's, 8-bit pixels mapped to the model's range."""
    expected = predictor.input_shape
    if tensor.ndim != len(expected) or any(e not in (-1, s) for e, s in zip(expected, tensor.shape, strict=True)):
        raise ServiceError(
            "wrong_tensor_shape", f"the model input must have shape {expected}, not {list(tensor.shape)}"
        )
    if tensor.dtype == np.uint8:
        return np.ascontiguousarray(predictor.target.from_8bit(tensor.astype(np.float32)), dtype=np.float32)
    check_range(tensor, predictor.target)
    return tensor
