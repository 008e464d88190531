"""Export a trained model and its novelty detector to artifacts/: a verified model.onnx, weights, pictures, a
Triton/KServe model repository (training.repository), model.json.

Everything is written into a staging folder beside the artifacts, checked, then
renamed into place with the manifest last; on any failure the previous artifacts stay.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch

from training import plots, repository
from training.data import Split
from training.model import SoftmaxRegression, softmax
from training.novelty import NoveltyDetector
from training.novelty_eval import Novelty
from training.repository import ARTIFACT_FILES
from training.train import accuracy_on

MODEL_NAME = "fashion-softmax"
INPUT_NAME = "image"  # float32 (N, 1, 28, 28), pixel values 0-255
OUTPUT_NAME = "probabilities"  # float32 (N, 10), rows sum to 1
NOVELTY_NAME = "novelty"  # float32 (N,): higher = less like the training garments
IN_DISTRIBUTION_NAME = "in_distribution"  # bool (N,): novelty <= the threshold in the metadata
OUTPUT_NAMES = (OUTPUT_NAME, NOVELTY_NAME, IN_DISTRIBUTION_NAME)
INPUT_RANGE = (0.0, 255.0)
INPUT_CONVENTION = "28x28 grayscale, light garment on a black background (Fashion-MNIST)"
MAX_BATCH = 256  # images per request: the server's limit (model.json "serving") and Triton's max_batch_size
PARITY_TOLERANCE = 1e-5  # max |onnxruntime - torch| of the probabilities over the test set
NOVELTY_TOLERANCE = 1e-3  # max |onnxruntime - torch| / (1 + |torch|) of the novelty over the test set


class ExportError(Exception):
    """The exported model failed a check; nothing was published."""


@dataclass
class TrainingSummary:
    """What the manifest records about the run that made the model."""

    config: dict  # TrainConfig as a dict: recipe and hyperparameters
    device: str
    seconds: float
    history: list  # EpochMetrics per epoch


class OnnxGraph(torch.nn.Module):
    """What model.onnx computes: raw pixels (N, 1, 28, 28) -> probabilities (N, 10), novelty (N,) and
    in_distribution (N,).

    Flattening and 0-255 scaling live here, inside the graph, so the server holds no copy. The classifier is the
    book's softmax regression; the novelty detector reads the same scaled pixels beside it.
    """

    def __init__(self, net: SoftmaxRegression, detector: NoveltyDetector):
        super().__init__()
        self.register_buffer("W", net.W.detach().cpu().contiguous())  # (784, 10)
        self.register_buffer("b", net.b.detach().cpu().clone())  # (10,)
        self.detector = detector

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        X = image.reshape(image.shape[0], -1) * (1.0 / INPUT_RANGE[1])  # (N, 784) in [0, 1]
        novelty = self.detector(X)  # (N,)
        return softmax(X @ self.W + self.b), novelty, novelty <= self.detector.threshold  # (N, 10), (N,), (N,)


def export(
    net: SoftmaxRegression,
    novelty: Novelty,
    summary: TrainingSummary,
    train_split: Split,
    test_split: Split,
    labels: tuple[str, ...],
    out_dir: Path | str,
) -> dict:
    """Write, verify and publish every artifact; returns the manifest. `novelty`: the detector fitted on the
    training images and its evaluation (training.novelty_eval)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    created = datetime.now(UTC)
    version = f"{summary.config['recipe']}-{created:%Y%m%dT%H%M%SZ}"
    graph = OnnxGraph(net, novelty.detector).eval()
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    try:
        model_path = staging / "model.onnx"
        onnx.save_model(_to_onnx(graph, labels, version, novelty.summary["method"]), model_path)
        onnx.checker.check_model(str(model_path), full_check=True)
        test_predictions = _verify(model_path, graph, test_split)

        W = graph.W.numpy()  # (784, 10): saved, and drawn as weights.png
        np.savez(staging / "weights.npz", W=W, b=graph.b.numpy())
        confusion = _confusion(test_split.labels.numpy(), test_predictions, len(labels))
        _draw(summary, W, test_split, test_predictions, confusion, labels, staging)
        plots.plot_novelty(novelty.scores, novelty.thresholds, staging / "novelty.png")
        train_accuracy = accuracy_on(net, train_split, net.W.device)
        folder = repository.model_folder(out_dir, MODEL_NAME)
        repository_version = repository.next_version(folder)
        config = repository.config_pbtxt(
            MODEL_NAME,
            MAX_BATCH,
            [repository.Tensor(INPUT_NAME, "TYPE_FP32", (1, 28, 28))],
            [
                repository.Tensor(OUTPUT_NAME, "TYPE_FP32", (len(labels),), labelled=True),
                repository.Tensor(NOVELTY_NAME, "TYPE_FP32", ()),
                repository.Tensor(IN_DISTRIBUTION_NAME, "TYPE_BOOL", ()),
            ],
        )
        manifest = _manifest(model_path, version, created, labels, summary, confusion, train_accuracy)
        manifest["model_repository"] = {"path": str(folder.relative_to(out_dir)), "version": repository_version}
        manifest["novelty"] = novelty.summary
        # what serving compares recent predictions with to see drift (serving/metrics.py)
        counts = np.bincount(train_split.labels.numpy(), minlength=len(labels))
        manifest["data"] = {"train_images": int(counts.sum()), "train_class_counts": counts.tolist(),
                            "test_images": len(test_split.labels)}  # fmt: skip
        (staging / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")
        staged = repository.stage(staging, ARTIFACT_FILES, config, labels)
        published = repository.publish(staged, folder, repository_version)  # before the manifest names it
        try:
            repository.make_current(staging, out_dir, ARTIFACT_FILES, ARTIFACT_FILES)
        except BaseException:
            shutil.rmtree(published, ignore_errors=True)  # the previous versions were never touched
            raise
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _to_onnx(graph: OnnxGraph, labels: tuple[str, ...], version: str, novelty_method: str) -> onnx.ModelProto:
    example = torch.zeros(2, 1, 28, 28)
    program = torch.onnx.export(
        graph,
        (example,),
        dynamo=True,
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes=({0: torch.export.Dim("N")},),  # any batch size
        verbose=False,
    )
    proto = program.model_proto  # weights inline: one self-contained file
    onnx.helper.set_model_props(
        proto,
        {
            "model_name": MODEL_NAME,
            "model_version": version,
            "labels": json.dumps(list(labels)),
            "input_range": json.dumps(list(INPUT_RANGE)),
            "input_convention": INPUT_CONVENTION,
            "novelty_threshold": json.dumps(graph.detector.threshold),
            "novelty_method": novelty_method,
        },
    )
    proto.doc_string = (
        "Softmax regression (D2L 3.6) on Fashion-MNIST: pixels 0-255 -> class probabilities, with a novelty score "
        "(higher = less like the training garments) and in_distribution = novelty <= novelty_threshold"
    )
    return proto


def _verify(model_path: Path, graph: OnnxGraph, split: Split) -> np.ndarray:
    """onnxruntime must match torch on every test image, all three outputs; returns the predicted class ids."""
    images = split.images.float().unsqueeze(1)  # (N, 1, 28, 28), 0-255
    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    ours, novelty, in_distribution = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images.numpy()})
    with torch.no_grad():
        reference, reference_novelty, _ = (output.numpy() for output in graph(images))
    difference = float(np.abs(ours - reference).max())
    if difference > PARITY_TOLERANCE:
        raise ExportError(f"onnxruntime differs from torch by {difference:.2e} (> {PARITY_TOLERANCE})")
    predictions = ours.argmax(axis=1)
    mismatched = int((predictions != reference.argmax(axis=1)).sum())
    if mismatched:
        raise ExportError(f"onnxruntime and torch disagree on the class of {mismatched} test images")
    relative = float((np.abs(novelty - reference_novelty) / (1 + np.abs(reference_novelty))).max())
    if relative > NOVELTY_TOLERANCE:
        raise ExportError(f"onnxruntime's novelty differs from torch's by {relative:.2e} (> {NOVELTY_TOLERANCE})")
    threshold = graph.detector.threshold
    if not np.array_equal(in_distribution, novelty <= np.float32(threshold)):
        raise ExportError("onnxruntime's in_distribution is not its novelty <= the threshold")
    # torch decides the same, except for scores within the tolerance of the threshold
    clear = np.abs(reference_novelty - threshold) > NOVELTY_TOLERANCE * (1 + abs(threshold))
    disagree = int((in_distribution != (reference_novelty <= threshold))[clear].sum())
    if disagree:
        raise ExportError(f"onnxruntime and torch disagree on in_distribution for {disagree} test images")
    return predictions


def _confusion(truth: np.ndarray, predictions: np.ndarray, classes: int) -> np.ndarray:
    """(classes, classes) counts: rows true class, columns predicted."""
    return np.bincount(truth * classes + predictions, minlength=classes * classes).reshape(classes, classes)


def _draw(summary, W: np.ndarray, split: Split, predictions, confusion, labels, folder: Path) -> None:
    plots.plot_weights(W, labels, folder / "weights.png")
    plots.plot_curves(summary.history, folder / "curves.png")
    shown = 18  # two rows of the seed's predict_ch3 grid
    plots.plot_predictions(
        split.images[:shown].numpy(),
        [labels[i] for i in split.labels[:shown].tolist()],
        [labels[i] for i in predictions[:shown].tolist()],
        folder / "predictions.png",
    )
    plots.plot_confusion(confusion, labels, folder / "confusion.png")


def _manifest(model_path, version, created, labels, summary, confusion, train_accuracy) -> dict:
    per_class = confusion.diagonal() / confusion.sum(axis=1)
    return {
        "name": MODEL_NAME,
        "version": version,
        "created_at": created.isoformat(timespec="seconds"),
        "model_file": "model.onnx",
        "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
        "labels": list(labels),
        "input": {
            "name": INPUT_NAME,
            "dtype": "float32",
            "shape": ["N", 1, 28, 28],
            "range": list(INPUT_RANGE),
            "convention": INPUT_CONVENTION,
        },
        "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["N", len(labels)]},
        "outputs": [
            {"name": OUTPUT_NAME, "dtype": "float32", "shape": ["N", len(labels)]},
            {"name": NOVELTY_NAME, "dtype": "float32", "shape": ["N"]},
            {"name": IN_DISTRIBUTION_NAME, "dtype": "bool", "shape": ["N"]},
        ],
        "serving": {"max_batch": MAX_BATCH},  # serving's batch limit unless FASHION_SOFTMAX_MAX_BATCH is set
        "metrics": {
            "test_accuracy": float(confusion.trace() / confusion.sum()),
            "train_accuracy": train_accuracy,
            "per_class_test_accuracy": dict(zip(labels, map(float, per_class), strict=True)),
        },
        "training": {
            **summary.config,
            "device": summary.device,
            "seconds": round(summary.seconds, 3),
            "history": [asdict(m) for m in summary.history],
        },
        "versions": _versions(),
        "files": list(ARTIFACT_FILES),
    }


def _versions() -> dict:
    found = {"python": platform.python_version()}
    for package in (
        "torch",
        "torchvision",
        "onnx",
        "onnxscript",
        "onnxruntime",
        "numpy",
        "scikit-learn",
        "scikit-image",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found
