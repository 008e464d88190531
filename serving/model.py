"""The exported model in onnxruntime: loaded once from artifacts/, then `predict` on pixel batches.

Everything about the model (labels, input name and shape, value range, version,
metrics) comes from model.json and the ONNX file's metadata, never from `training`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

REMEDY = "run `make train-export` to create it, or point FASHION_SOFTMAX_MODEL_DIR at a folder that has one"


class ModelLoadError(Exception):
    """The artifacts are missing, corrupt or inconsistent; the message names the path and the remedy."""


@dataclass(frozen=True)
class InputSpec:
    name: str  # the graph's input name
    shape: tuple[int, int, int]  # per image, e.g. (1, 28, 28)
    value_range: tuple[float, float]  # e.g. (0.0, 255.0)


class Predictor:
    """One onnxruntime session and what the manifest says about it."""

    def __init__(self, session: onnxruntime.InferenceSession, manifest: dict, model_dir: Path):
        self.session = session
        self.manifest = manifest
        self.model_dir = model_dir
        props = session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = tuple(json.loads(props["labels"]))
        self.version: str = props["model_version"]
        self.name: str = props.get("model_name", manifest.get("name", "model"))
        (graph_input,) = session.get_inputs()
        self.input = InputSpec(
            name=graph_input.name,
            shape=tuple(graph_input.shape[1:]),
            value_range=tuple(json.loads(props["input_range"])),
        )
        self.output_name = session.get_outputs()[0].name

    @classmethod
    def load(cls, model_dir: Path | str, threads: int = 1) -> Predictor:
        """Read model.json, check model.onnx against its sha256, open the session."""
        model_dir = Path(model_dir)
        manifest_path = model_dir / "model.json"
        try:
            manifest = json.loads(manifest_path.read_text())
            model_path = model_dir / manifest.get("model_file", "model.onnx")
            model_bytes = model_path.read_bytes()
        except FileNotFoundError as error:
            raise ModelLoadError(f"no model at {error.filename}: {REMEDY}") from error
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot read the model in {model_dir} ({error}): {REMEDY}") from error
        if hashlib.sha256(model_bytes).hexdigest() != manifest.get("sha256"):
            raise ModelLoadError(f"{model_path} does not match the sha256 in {manifest_path}: {REMEDY}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one per worker: gunicorn runs several
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
            return cls(session, manifest, model_dir)
        except Exception as error:  # onnxruntime raises its own exception types for bad graphs
            raise ModelLoadError(f"{model_path} is not a usable model ({error}): {REMEDY}") from error

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 1, 28, 28) float32 pixels -> (N, 10) float32 probabilities."""
        (probabilities,) = self.session.run([self.output_name], {self.input.name: pixels})
        return probabilities

    def metadata(self) -> dict:
        """What GET /metadata answers."""
        keys = ("created_at", "sha256", "metrics", "input", "output", "training", "versions")
        training = self.manifest.get("training", {})
        return {
            "name": self.name,
            "version": self.version,
            "labels": list(self.labels),
            **{key: self.manifest.get(key) for key in keys},
            "training": {key: value for key, value in training.items() if key != "history"},
        }
