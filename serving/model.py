"""The exported model in onnxruntime: loaded once from artifacts/ (or a version folder), then `predict` on
pixel batches: the class probabilities, and the novelty check computed in the same graph.

Everything about the model (labels, input name and shape, value range, version, novelty threshold,
metrics) comes from model.json and the ONNX file's metadata, never from `training`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from serving.preprocess import Target

OUTPUT_NAME = "probabilities"  # the classifier's output, float32 (N, classes)
NOVELTY = "novelty"  # float32 (N,): how unlike the training garments an image is; higher is less like them
IN_DISTRIBUTION = "in_distribution"  # bool (N,): novelty <= the model's threshold
OUTPUTS = (OUTPUT_NAME, NOVELTY, IN_DISTRIBUTION)
REMEDY = "run `make train-export` to create it, or point FASHION_SOFTMAX_MODEL_DIR at a folder that has one"


class ModelLoadError(Exception):
    """The artifacts are missing, corrupt or inconsistent; the message names the path and the remedy."""


@dataclass(frozen=True)
class Outputs:
    probabilities: np.ndarray  # (N, classes) float32, rows sum to 1
    novelty: np.ndarray  # (N,) float32
    in_distribution: np.ndarray  # (N,) bool


class Predictor:
    """One model version: its onnxruntime session and what its manifest says about it."""

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
        self.input_shape = [dim if isinstance(dim, int) else -1 for dim in graph_input.shape]  # -1: any batch
        self.target = Target(side=height, value_range=tuple(json.loads(props["input_range"])))
        self.output_name = OUTPUT_NAME
        missing = set(OUTPUTS) - {node.name for node in session.get_outputs()}
        if missing:  # an export from before the novelty check
            raise ValueError(f"the graph has no output {', '.join(sorted(missing))}")
        self.novelty_threshold = float(json.loads(props["novelty_threshold"]))
        # the training set's class shares, what predictions are compared with to see drift (uniform if unknown)
        counts = manifest.get("data", {}).get("train_class_counts") or [1] * len(self.labels)
        self.class_shares = np.asarray(counts, dtype=np.float64) / sum(counts)
        # written by the export (training/export.py): the model repository version, the batch limit
        self.repository_version: int = int(manifest.get("model_repository", {}).get("version", 1))
        self.max_batch: int = int(manifest["serving"]["max_batch"])
        self.sha256: str = manifest["sha256"]

    @classmethod
    def load(cls, model_dir: Path | str, threads: int = 1) -> Predictor:
        """Read model.json in `model_dir` (artifacts/, or a version folder of the model repository), check
        model.onnx against its sha256, open the session, run one smoke inference."""
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
        """One inference on two blank images: (2, labels) finite probabilities whose rows sum to 1, and a novelty
        score per image whose in_distribution flag agrees with the threshold."""
        blank = np.full((2, 1, self.target.side, self.target.side), self.target.value_range[0], dtype=np.float32)
        outputs = self.predict(blank)
        probabilities = outputs.probabilities
        if probabilities.shape != (2, len(self.labels)):
            raise ValueError(f"a batch of 2 gave output shape {probabilities.shape}, not (2, {len(self.labels)})")
        if not (np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)):
            raise ValueError("the output rows are not probabilities (finite, summing to 1)")
        novelty, flags = outputs.novelty, outputs.in_distribution
        if novelty.shape != (2,) or flags.shape != (2,) or flags.dtype != bool or not np.isfinite(novelty).all():
            raise ValueError("the novelty outputs are not one finite score and one flag per image")
        if (flags != (novelty <= self.novelty_threshold)).any():
            raise ValueError("in_distribution disagrees with the novelty threshold in the metadata")

    def check_compatible(self, served: Predictor) -> None:
        """A replacement must take and give what `served` does: same input, output and labels."""
        differences = [
            f"{what} {new!r} instead of {old!r}"
            for what, new, old in (
                ("input", (self.input_name, self.target), (served.input_name, served.target)),
                (
                    "outputs",
                    [n.name for n in self.session.get_outputs()],
                    [n.name for n in served.session.get_outputs()],
                ),
                ("labels", self.labels, served.labels),
            )
            if new != old
        ]
        if differences:
            raise ModelLoadError(
                f"{self.name} {self.version} is not compatible with the served model: " + "; ".join(differences)
            )

    def predict(self, pixels: np.ndarray) -> Outputs:
        """(N, 1, side, side) float32 pixels -> probabilities (N, classes), novelty (N,), in_distribution (N,)."""
        return Outputs(*self.session.run(OUTPUTS, {self.input_name: pixels}))

    def metadata(self) -> dict:
        """What GET /metadata answers."""
        keys = ("created_at", "sha256", "metrics", "input", "output", "novelty", "training", "versions")
        training = self.manifest.get("training", {})
        return {
            "name": self.name,
            "version": self.version,
            "repository_version": self.repository_version,
            "labels": list(self.labels),
            **{key: self.manifest.get(key) for key in keys},
            "training": {key: value for key, value in training.items() if key != "history"},
        }
