"""End to end on the real Fashion-MNIST (installed by .ci/run): 2 epochs, export, verify."""

import json

import onnxruntime
import pytest
from PIL import Image

pytestmark = pytest.mark.dataset


def test_two_epochs_of_the_books_recipe_on_the_real_data(real_run):
    finished = real_run.finished
    assert finished.returncode == 0, finished.stderr
    manifest = json.loads((real_run.out_dir / "model.json").read_text())
    # epoch-to-epoch accuracy swings by about a point: no tighter bound than 0.78
    assert manifest["metrics"]["test_accuracy"] > 0.78
    assert manifest["training"]["epochs"] == 2 and manifest["training"]["device"] == "cpu"
    model = str(real_run.out_dir / "model.onnx")
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].name == "probabilities"
    assert f"{manifest['metrics']['test_accuracy']:.4f}" in finished.stdout


def test_the_novelty_detector_meets_its_targets_on_the_real_data(real_run):
    """At the threshold accepting 95% of the validation images: >= 93% of the test set accepted; every
    out-of-distribution set >= 85% flagged with an AUROC >= 0.95; noise all flagged."""
    assert real_run.finished.returncode == 0, real_run.finished.stderr
    found = json.loads((real_run.out_dir / "model.json").read_text())["novelty"]
    assert found["fit"]["images"] == "training images 0-49999"
    assert found["fit"]["validation"] == "training images 50000-59999"
    assert 0.95 <= found["validation_accepted"] < 0.9501
    assert found["test_accepted"] >= 0.93
    rows = found["evaluation"]["sets"]
    assert {row["role"] for row in rows} == {"tune", "report"} and len(rows) == 13
    for row in rows:
        label = f"{row['name']} ({row['role']})"
        assert row["flagged"]["novelty"] >= 0.85 and row["auroc"]["novelty"] >= 0.95, label
        if row["name"] == "noise":
            assert row["flagged"]["novelty"] == 1.0, label
    # the figures are what the exported graph does on the real test images
    session = onnxruntime.InferenceSession(str(real_run.out_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    (in_distribution,) = session.run(["in_distribution"], {"image": real_run.test.images.float().unsqueeze(1).numpy()})
    assert round(float(in_distribution.mean()), 4) == found["test_accepted"]
    # the job prints the table
    assert "novelty (ours)" in real_run.finished.stdout and "Fashion-MNIST test" in real_run.finished.stdout
    with Image.open(real_run.out_dir / "novelty.png") as picture:
        assert picture.format == "PNG"
