"""The exported model in onnxruntime: loaded once from artifacts/, then `predict` on pixel batches.

Everything about the model (labels, input name and shape, value range, version,
metrics) comes from model.json and the ONNX file's metadata, never from `training`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnxruntime

from serving.preprocess import Target

REMEDY = "run `make train-export` to create it, or point FASHION_SOFTMAX_MODEL_DIR at a folder that has one"


class ModelLoadError(Exception):
    """The artifacts are missing, corrupt or inconsistent; the message names the path and the remedy."""


class Predictor:
    """One onnxruntime session and what the manifest says about it."""

    def __init__(self, session: onnxruntime.InferenceSession, manifest: dict):
        self.session = session
        self.manifest = manifest
        props = session.get_modelmeta().custom_metadata_map
        self.labels: tuple[str, ...] = tuple(json.loads(props["labels"]))
        self.version: str = props["model_version"]
        self.name: str = props.get("model_name", manifest.get("name", "model"))
        (graph_input,) = session.get_inputs()
        channels, height, width = graph_input.shape[1:]  # (N, 1, side, side): one grayscale channel
        if channels != 1 or height != width or not isinstance(height, int):
            raise ValueError(f"expected input (N, 1, side, side), the graph has {graph_input.shape}")
        self.input_name = graph_input.name
        self.target = Target(side=height, value_range=tuple(json.loads(props["input_range"])))
        self.output_name = "probabilities"  # the classifier's output, by name: the graph has others beside it
        # written by the export (training/export.py): the model repository version, the batch limit
        self.repository_version: int = int(manifest.get("model_repository", {}).get("version", 1))
        self.max_batch: int = int(manifest["serving"]["max_batch"])

    @classmethod
    def load(cls, model_dir: Path | str, threads: int = 1) -> Predictor:
        """Read model.json, check model.onnx against its sha256, open the session."""
        model_dir = Path(model_dir)
        manifest_path = model_dir / "model.json"
        try:
            manifest = json.loads(manifest_path.read_text())
            if not isinstance(manifest, dict):
                raise ValueError("model.json is not a JSON object")
            serving = manifest.get("serving")
            if not isinstance(serving, dict) or not isinstance(serving.get("max_batch"), int):
                raise ValueError("model.json has no serving.max_batch (an export older than the V2 routes)")
            model_path = model_dir / manifest.get("model_file", "model.onnx")
            model_bytes = model_path.read_bytes()
        except FileNotFoundError as error:
            raise ModelLoadError(f"no model at {error.filename}: {REMEDY}") from error
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"cannot read the model in {model_dir} ({error}): {REMEDY}") from error
        if hashlib.sha256(model_bytes).hexdigest() != manifest.get("sha256"):
            raise ModelLoadError(f"{model_path} does not match the sha256 in {manifest_path}: {REMEDY}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # one per worker process: the server runs several
        options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
            predictor = cls(session, manifest)
            predictor.smoke_test()
        except Exception as error:  # onnxruntime raises its own exception types for bad graphs
            raise ModelLoadError(f"{model_path} is not a usable model ({error}): {REMEDY}") from error
        return predictor

    def smoke_test(self) -> None:
        """One inference on two blank images: (2, labels) finite probabilities whose rows sum to 1."""
        blank = np.full((2, 1, self.target.side, self.target.side), self.target.value_range[0], dtype=np.float32)
        probabilities = self.predict(blank)
        if probabilities.shape != (2, len(self.labels)):
            raise ValueError(f"a batch of 2 gave output shape {probabilities.shape}, not (2, {len(self.labels)})")
        if not (np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)):
            raise ValueError("the output rows are not probabilities (finite, summing to 1)")

    def check_compatible(self, served: Predictor) -> None:
        """A replacement must take and give what `served` does: same input, output and labels."""
        differences = [
            f"{what} {new!r} instead of {old!r}"
            for what, new, old in (
                ("input", (self.input_name, self.target), (served.input_name, served.target)),
                ("output", self.output_name, served.output_name),
                ("labels", self.labels, served.labels),
            )
            if new != old
        ]
        if differences:
            raise ModelLoadError(
                f"{self.name} {self.version} is not compatible with the served model: " + "; ".join(differences)
            )

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """(N, 1, side, side) float32 pixels -> (N, 10) float32 probabilities."""
        (probabilities,) = self.session.run([self.output_name], {self.input_name: pixels})
        return probabilities

    def classify(self, pixels: np.ndarray) -> list[dict]:
        """(N, 1, side, side) pixels -> per image: top label, its class id and probability, all ten by label."""
        # rounded to 1e-7, about float32's resolution near 1: shorter JSON, nothing lost that the model has
        rows = self.predict(pixels).astype(np.float64).round(7).tolist()
        predictions = []
        for row in rows:
            class_id = max(range(len(row)), key=row.__getitem__)
            predictions.append(
                {
                    "label": self.labels[class_id],
                    "class_id": class_id,
                    "probability": row[class_id],
                    "probabilities": dict(zip(self.labels, row, strict=True)),
                }
            )
        return predictions

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
