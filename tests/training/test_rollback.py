"""`python -m training.rollback N`: a version made current again is checked first and published whole; a
missing, damaged or incompatible version is refused in one line and nothing changes."""

from __future__ import annotations

import hashlib
import json

import pytest

from harness.publish import export_fit
from training.data import LABELS
from training.export import ARTIFACT_FILES
from training.rollback import main

REPOSITORY = "model_repository/fashion-softmax"


@pytest.fixture
def two_versions(tmp_path, export_to):
    export_to(tmp_path)
    export_to(tmp_path)
    return tmp_path


def snapshot(folder) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def test_a_version_becomes_current_with_all_its_files(two_versions, capsys):
    before = snapshot(two_versions)
    assert main(["1", "--out-dir", str(two_versions)]) == 0
    assert "version 1" in capsys.readouterr().out
    version_one = two_versions / REPOSITORY / "1"
    assert snapshot(two_versions) == snapshot(version_one) != before  # every file, the manifest included
    manifest = json.loads((two_versions / "model.json").read_text())
    assert manifest["model_repository"]["version"] == 1
    assert manifest["sha256"] == hashlib.sha256((two_versions / "model.onnx").read_bytes()).hexdigest()
    assert not list(two_versions.glob(".staging-*"))
    assert main(["2", "--out-dir", str(two_versions)]) == 0  # and forward again
    assert snapshot(two_versions) == before


def test_a_picture_the_version_does_not_have_does_not_stay(two_versions):
    (two_versions / REPOSITORY / "1" / "weights.png").unlink()  # a version exported before that picture existed
    assert main(["1", "--out-dir", str(two_versions)]) == 0
    assert not (two_versions / "weights.png").exists()
    assert set(snapshot(two_versions)) == set(ARTIFACT_FILES) - {"weights.png"}


def refused(folder, argv, capsys, status=1) -> str:
    before = snapshot(folder)
    assert main([*argv, "--out-dir", str(folder)]) == status
    assert snapshot(folder) == before  # nothing changed
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err  # one line
    return err


def test_a_missing_version_is_refused_naming_the_ones_there(two_versions, capsys):
    err = refused(two_versions, ["7"], capsys)
    assert "no version 7" in err and "versions there: 1, 2" in err


def test_a_damaged_version_is_refused(two_versions, capsys):
    (two_versions / REPOSITORY / "1" / "model.onnx").write_bytes(b"not the exported model")
    assert "does not match the sha256" in refused(two_versions, ["1"], capsys)


def test_a_version_without_a_manifest_is_refused(two_versions, capsys):
    (two_versions / REPOSITORY / "1" / "model.json").unlink()
    assert "no usable manifest" in refused(two_versions, ["1"], capsys)


def test_a_version_the_server_would_refuse_is_refused(tmp_path, small_splits, trained, novelty, capsys):
    config, result = trained
    export_fit(tmp_path, config, result, *small_splits, tuple(reversed(LABELS)), novelty)  # version 1
    export_fit(tmp_path, config, result, *small_splits, LABELS, novelty)  # version 2, current
    assert "other labels than the served model" in refused(tmp_path, ["1"], capsys)


@pytest.mark.parametrize("argv", [["x"], ["0"], []])
def test_usage_mistakes_get_one_line_and_status_2(two_versions, capsys, argv):
    err = refused(two_versions, argv, capsys, status=2)
    assert err.startswith("python -m training.rollback: error:")


def test_without_a_current_model_it_says_so(tmp_path, capsys):
    assert "no current model" in refused(tmp_path, ["1"], capsys)
