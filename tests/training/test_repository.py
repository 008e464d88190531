"""The Triton/KServe model repository the export publishes: Triton's own config parser, growing versions."""

import importlib.util
import json
from pathlib import Path

import onnxruntime
import pytest
from google.protobuf import text_format

from training import export as export_module
from training.data import LABELS

MODEL = "fashion-softmax"


def triton_model_config():
    """tritonclient's generated model_config_pb2 (Triton's ModelConfig), loaded by its path.

    `from tritonclient.grpc import model_config_pb2` would run tritonclient.grpc's __init__, which also registers
    Triton's service protos: KServe's SDK (tests/serving/test_v2_clients.py) registers its own copies of those
    names, and protobuf refuses the second in one process.
    """
    package = Path(importlib.util.find_spec("tritonclient").submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location("triton_model_config_pb2", package / "grpc" / "model_config_pb2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model_config_pb2 = triton_model_config()


def test_config_pbtxt_parses_as_tritons_model_config(tmp_path, export_to):
    manifest = export_to(tmp_path)
    folder = tmp_path / "model_repository" / MODEL
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.name == MODEL and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == manifest["serving"]["max_batch"] == export_module.MAX_BATCH
    (image,) = config.input
    assert (image.name, image.data_type, list(image.dims)) == ("image", model_config_pb2.TYPE_FP32, [1, 28, 28])
    probabilities, novelty, in_distribution = config.output
    assert (probabilities.name, probabilities.data_type) == ("probabilities", model_config_pb2.TYPE_FP32)
    assert list(probabilities.dims) == [10] and probabilities.label_filename == "labels.txt"
    assert not probabilities.HasField("reshape")
    assert (folder / "labels.txt").read_text().splitlines() == list(LABELS)
    # one value per image: [N] in the model, [N, 1] in Triton's API (Triton's documented reshape to [])
    for output, data_type in ((novelty, model_config_pb2.TYPE_FP32), (in_distribution, model_config_pb2.TYPE_BOOL)):
        assert (output.data_type, list(output.dims), output.label_filename) == (data_type, [1], "")
        assert output.HasField("reshape") and list(output.reshape.shape) == []
    assert (novelty.name, in_distribution.name) == ("novelty", "in_distribution")

    # the repository's model is the artifact's model, and its tensors are what config.pbtxt says
    assert (folder / "1" / "model.onnx").read_bytes() == (tmp_path / "model.onnx").read_bytes()
    session = onnxruntime.InferenceSession(str(folder / "1" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape[1:]) for i in session.get_inputs()] == [("image", [1, 28, 28])]
    outputs = [(o.name, o.type, o.shape[1:]) for o in session.get_outputs()]
    assert outputs == [("probabilities", "tensor(float)", [10]), ("novelty", "tensor(float)", []),
                       ("in_distribution", "tensor(bool)", [])]  # fmt: skip
    assert manifest["model_repository"] == {"path": f"model_repository/{MODEL}", "version": 1}


def test_versions_grow_and_earlier_ones_stay(tmp_path, export_to):
    folder = tmp_path / "model_repository" / MODEL
    (folder / "7").mkdir(parents=True)  # a version copied in by hand: the next export is 8
    (folder / "7" / "model.onnx").write_bytes(b"an older model")
    (folder / "notes").mkdir()  # not an integer: not a version
    assert export_to(tmp_path)["model_repository"]["version"] == 8
    assert export_to(tmp_path)["model_repository"]["version"] == 9
    assert json.loads((tmp_path / "model.json").read_text())["model_repository"]["version"] == 9
    assert sorted(p.name for p in folder.iterdir()) == ["7", "8", "9", "config.pbtxt", "labels.txt", "notes"]
    assert (folder / "7" / "model.onnx").read_bytes() == b"an older model"
    for version in ("8", "9"):
        onnxruntime.InferenceSession(str(folder / version / "model.onnx"), providers=["CPUExecutionProvider"])


def test_a_version_folder_is_never_replaced(tmp_path, export_to, monkeypatch):
    """Two exports racing for one version: the second one's rename fails; nothing of the first is lost."""
    export_to(tmp_path)
    folder = tmp_path / "model_repository" / MODEL
    before = (folder / "1" / "model.onnx").read_bytes()
    monkeypatch.setattr(export_module.repository, "next_version", lambda _folder: 1)
    with pytest.raises(OSError):
        export_to(tmp_path)
    assert (folder / "1" / "model.onnx").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["1", "config.pbtxt", "labels.txt"]
    assert not list(tmp_path.glob(".staging-*"))
