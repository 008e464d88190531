"""End to end on the real Fashion-MNIST (installed by .ci/run): 2 epochs, export, verify."""

import json
import subprocess
import sys

import onnxruntime
import pytest

from tests.helpers import skip_or_fail
from training.data import DataNotFoundError, load_fashion_mnist

pytestmark = pytest.mark.dataset


@pytest.fixture(scope="session")
def real_data_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("fashion-mnist")
    try:
        train, test = load_fashion_mnist(data_dir)
    except DataNotFoundError as error:
        skip_or_fail(f"real Fashion-MNIST unavailable: {error}")
    assert (len(train.images), len(test.images)) == (60000, 10000)
    return data_dir


def test_two_epochs_of_the_books_recipe_on_the_real_data(real_data_dir, tmp_path):
    finished = subprocess.run(
        [sys.executable, "-m", "training", "--epochs", "2", "--quiet", "--device", "cpu",
         "--data-dir", str(real_data_dir), "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    manifest = json.loads((tmp_path / "model.json").read_text())
    # epoch-to-epoch accuracy swings by about a point: no tighter bound than 0.78
    assert manifest["metrics"]["test_accuracy"] > 0.78
    assert manifest["training"]["epochs"] == 2 and manifest["training"]["device"] == "cpu"
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].name == "probabilities"
    assert f"{manifest['metrics']['test_accuracy']:.4f}" in finished.stdout
