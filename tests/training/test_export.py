"""Export: one verified ONNX file with its metadata, the manifest, and all-or-nothing publishing."""

import copy
import hashlib
import json
import os
from importlib import metadata

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from PIL import Image

from training import export as export_module
from training.data import LABELS
from training.export import ARTIFACT_FILES, ExportError, OnnxGraph


def test_export_writes_a_verified_self_contained_model(tmp_path, export_to, trained, small_splits):
    manifest = export_to(tmp_path)
    published = sorted(p.name for p in tmp_path.iterdir())
    assert published == sorted([*ARTIFACT_FILES, "model_repository"])  # no .data file, no staging left

    model = onnx.load(str(tmp_path / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["labels"]) == list(LABELS)
    assert json.loads(props["input_range"]) == [0.0, 255.0]
    assert props["model_version"] == manifest["version"]

    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    (only_input,) = session.get_inputs()
    assert only_input.name == "image" and only_input.type == "tensor(float)"
    assert only_input.shape[1:] == [1, 28, 28] and isinstance(only_input.shape[0], str)  # dynamic batch
    assert [o.name for o in session.get_outputs()] == ["probabilities", "novelty", "in_distribution"]

    _, result = trained
    for batch in (1, 7):
        pixels = small_splits[1].images[:batch].float().unsqueeze(1)  # (batch, 1, 28, 28), 0-255
        (probabilities,) = session.run(["probabilities"], {"image": pixels.numpy()})
        assert probabilities.shape == (batch, 10)
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
        with torch.no_grad():
            reference = result.net(pixels / 255.0).numpy()  # scaling happens inside the graph
        np.testing.assert_allclose(probabilities, reference, atol=1e-6)


def test_manifest_describes_the_model(tmp_path, export_to, trained):
    manifest = export_to(tmp_path)
    on_disk = json.loads((tmp_path / "model.json").read_text())
    assert on_disk == manifest
    assert manifest["sha256"] == hashlib.sha256((tmp_path / "model.onnx").read_bytes()).hexdigest()
    assert manifest["labels"] == list(LABELS)
    assert manifest["input"]["shape"] == ["N", 1, 28, 28] and manifest["input"]["range"] == [0.0, 255.0]
    assert 0.9 < manifest["metrics"]["test_accuracy"] <= 1.0  # separable synthetic classes
    assert set(manifest["metrics"]["per_class_test_accuracy"]) == set(LABELS)
    config, result = trained
    assert manifest["training"]["seconds"] == round(result.seconds, 3)
    assert manifest["training"]["epochs"] == config.epochs and manifest["training"]["lr"] == config.lr
    assert manifest["training"]["device"] == "cpu" and len(manifest["training"]["history"]) == config.epochs
    assert manifest["versions"]["torch"] == metadata.version("torch")


def test_weights_load_without_unpickling_and_pictures_are_pngs(tmp_path, export_to, trained):
    export_to(tmp_path)
    _, result = trained
    with np.load(tmp_path / "weights.npz", allow_pickle=False) as weights:
        np.testing.assert_array_equal(weights["W"], result.net.W.detach().numpy())
        np.testing.assert_array_equal(weights["b"], result.net.b.detach().numpy())
    for name in ("weights.png", "curves.png", "predictions.png", "confusion.png", "novelty.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "PNG" and picture.width > 300 and picture.height > 150


def repository_files(out_dir) -> dict:
    folder = out_dir / "model_repository"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fail(*_args, **_kwargs):
    raise RuntimeError("injected failure")


def fail_on_publish(real_replace, name="model.json"):
    def replace(src, dst):
        if str(dst).endswith(name):
            raise OSError(f"injected failure while publishing {name}")
        return real_replace(src, dst)

    return replace


@pytest.mark.parametrize(
    "target, make_failure",
    [
        ("_to_onnx", lambda: fail),
        ("_verify", lambda: fail),
        ("plots.plot_confusion", lambda: fail),
        ("plots.plot_novelty", lambda: fail),
        ("_manifest", lambda: fail),
        ("os.replace", lambda: fail_on_publish(os.replace)),
        ("repository.stage", lambda: fail),
        ("os.replace", lambda: fail_on_publish(os.replace, "config.pbtxt")),
    ],
    ids=[
        "onnx-export",
        "verification",
        "pictures",
        "novelty-picture",
        "manifest",
        "publishing",
        "repository",
        "repository-config",
    ],
)
def test_a_failure_during_export_leaves_the_previous_artifacts(tmp_path, export_to, monkeypatch, target, make_failure):
    export_to(tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in ARTIFACT_FILES}
    repository_before = repository_files(tmp_path)
    owner, _, attribute = target.rpartition(".")
    namespace = {"": export_module, "plots": export_module.plots, "os": export_module.repository.os}.get(owner)
    namespace = namespace or export_module.repository
    monkeypatch.setattr(namespace, attribute, make_failure())
    with pytest.raises((RuntimeError, OSError)):
        export_to(tmp_path)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # same files, same bytes, no staging folder left
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["model_repository"]
    assert repository_files(tmp_path) == repository_before  # version 1 intact, no version 2
    manifest = json.loads(after["model.json"])
    assert manifest["sha256"] == hashlib.sha256(after["model.onnx"]).hexdigest()
    onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])


def test_verification_refuses_a_graph_that_differs_from_torch(tmp_path, trained, small_splits, novelty):
    _, result = trained
    graph = OnnxGraph(result.net, novelty.detector).eval()
    good = tmp_path / "model.onnx"
    onnx.save_model(export_module._to_onnx(graph, LABELS, "test", "method"), good)
    with torch.no_grad():
        graph.b[0] += 1e-3  # torch now computes something else than the file
    with pytest.raises(ExportError, match="differs from torch"):
        export_module._verify(good, graph, small_splits[1])


def test_the_graph_says_how_novel_each_image_is_as_the_detector_does(tmp_path, export_to, small_splits, novelty):
    manifest = export_to(tmp_path)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    outputs = {o.name: (o.type, o.shape) for o in session.get_outputs()}
    assert outputs["novelty"][0] == "tensor(float)" and outputs["in_distribution"][0] == "tensor(bool)"
    assert len(outputs["novelty"][1]) == len(outputs["in_distribution"][1]) == 1  # (N,)

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    threshold = json.loads(props["novelty_threshold"])
    assert threshold == manifest["novelty"]["threshold"] == novelty.detector.threshold
    assert props["novelty_method"] == manifest["novelty"]["method"] and len(props["novelty_method"]) < 120

    garments = small_splits[1].images[:20].float().unsqueeze(1)  # (20, 1, 28, 28), 0-255
    noise = torch.from_numpy(np.random.default_rng(0).uniform(0, 255, (5, 1, 28, 28)).astype(np.float32))
    images = torch.cat([garments, noise])
    probabilities, scores, in_distribution = session.run(None, {"image": images.numpy()})
    assert probabilities.shape == (25, 10) and scores.shape == in_distribution.shape == (25,)
    with torch.no_grad():
        expected = novelty.detector(images.reshape(25, -1) / 255.0).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(in_distribution, scores <= np.float32(threshold))
    assert in_distribution[:20].mean() > 0.8 and not in_distribution[20:].any()  # garments pass, noise does not


def test_the_manifest_says_what_the_score_is_and_how_it_was_measured(tmp_path, export_to, novelty_on_sets):
    manifest = export_to(tmp_path, with_novelty=novelty_on_sets)
    found = manifest["novelty"]
    assert found == json.loads((tmp_path / "model.json").read_text())["novelty"] == novelty_on_sets.summary
    assert found["worse"] == "higher" and "higher = less like the training garments" in found["score"]
    assert found["validation_accepted"] >= 0.95 and 0 < found["test_accepted"] <= 1
    assert found["fit"]["images"] == "training images 0-852"  # 1,024 small training images, the last sixth held out
    assert found["fit"]["validation"] == "training images 853-1023"
    assert [o["name"] for o in manifest["outputs"]] == ["probabilities", "novelty", "in_distribution"]
    assert {row["role"] for row in found["evaluation"]["sets"]} == {"tune", "report"}
    with Image.open(tmp_path / "novelty.png") as picture:  # distributions and 7 ROC panels: a tall picture
        assert picture.format == "PNG" and picture.height > 800


def test_verification_refuses_a_novelty_score_that_differs_from_torch(tmp_path, trained, small_splits, novelty):
    _, result = trained
    graph = OnnxGraph(result.net, novelty.detector).eval()
    good = tmp_path / "model.onnx"
    onnx.save_model(export_module._to_onnx(graph, LABELS, "test", "method"), good)
    export_module._verify(good, graph, small_splits[1])  # as exported: passes
    changed = OnnxGraph(result.net, copy.deepcopy(novelty.detector)).eval()
    changed.detector.ratio_offset += 0.5  # torch now scores every image half a nat higher
    with pytest.raises(ExportError, match="novelty differs"):
        export_module._verify(good, changed, small_splits[1])
