"""`python -m training`: user mistakes get one line and a non-zero exit, never a traceback."""

import json
import subprocess
import sys

import pytest
import torch

from harness.images import write_idx_set
from training import cli, ood
from training.data import load_fashion_mnist


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "training", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "ten"], "--epochs"),
        (["--lr", "-0.1"], "--lr"),
        (["--batch-size", "1.5"], "--batch-size"),
        (["--device", "tpu"], "--device"),
        (["--recipe", "fastest"], "--recipe"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args, expected, capsys):
    assert cli.main(args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m training: error:") and expected in lines[0] and "--help" in lines[0]
    assert captured.out == ""


def test_the_real_entry_point_reports_bad_arguments_the_same_way():
    finished = run_cli("--epochs", "0")
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines() == [
        "python -m training: error: argument --epochs: expected a positive int, got '0' (see --help)"
    ]


def test_help_lists_the_flags_with_defaults():
    finished = run_cli("--help")
    assert finished.returncode == 0
    for flag in ("--epochs", "--lr", "--batch-size", "--seed", "--device", "--data-dir", "--out-dir", "--recipe"):
        assert flag in finished.stdout
    assert "default: auto" in finished.stdout and "default: artifacts" in finished.stdout


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """The CLI reads test-made IDX files and never the network or the system copy."""
    write_idx_set(tmp_path / "data" / "FashionMNIST" / "raw", train_count=512, test_count=128)

    def load(data_dir):
        return load_fashion_mnist(data_dir, download=False, system_dir=tmp_path / "no-system-copy")

    monkeypatch.setattr(cli, "load_fashion_mnist", load)
    return tmp_path


def test_missing_data_is_one_line_naming_the_remedies(tiny_data, capsys):
    assert cli.main(["--data-dir", str(tiny_data / "empty"), "--out-dir", str(tiny_data / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dataset-fashion-mnist" in err[0] and "--data-dir" in err[0]
    assert not (tiny_data / "out").exists()


def test_cuda_requested_without_cuda(tiny_data, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert cli.main(["--device", "cuda", "--data-dir", str(tiny_data / "data")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cpu" in err[0]


def test_missing_fonts_are_one_line_naming_the_packages(tiny_data, monkeypatch, capsys):
    monkeypatch.setattr(ood, "FONT_DIR", tiny_data / "no-fonts")
    monkeypatch.setattr(cli, "build_sets", ood.build_sets.__wrapped__)  # built here, not the cached sets
    assert cli.main(["--quiet", "--data-dir", str(tiny_data / "data"), "--out-dir", str(tiny_data / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fonts-dejavu-core fonts-liberation2" in err[0] and "Traceback" not in err[0]
    assert not (tiny_data / "out").exists()  # found before training: nothing published


def test_unwritable_out_dir_is_one_line(tiny_data, capsys):
    blocker = tiny_data / "a-file"
    blocker.write_text("not a directory")
    code = cli.main(["--quiet", "--epochs", "1", "--data-dir", str(tiny_data / "data"), "--out-dir", str(blocker)])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a-file" in err[0] and "Traceback" not in err[0]


def test_a_full_run_prints_a_summary_and_publishes(tiny_data, capsys):
    out = tiny_data / "out"
    code = cli.main(
        ["--epochs", "2", "--batch-size", "64", "--data-dir", str(tiny_data / "data"), "--out-dir", str(out)]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert "test accuracy" in captured.out and str(out / "model.onnx") in captured.out
    assert f"model repository: {out / 'model_repository' / 'fashion-softmax'}/ (version 1)" in captured.out
    assert "epoch   2" in captured.out + captured.err
    assert "novelty detector" in captured.out and "novelty (ours)" in captured.out
    for name in ("digits (tune)", "letters (report)", "faces (report)", "noise (report)", "Fashion-MNIST test"):
        assert name in captured.out
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["training"]["epochs"] == 2 and manifest["training"]["batch_size"] == 64
    assert manifest["training"]["recipe"] == "book" and manifest["training"]["lr"] == 0.1


def test_quiet_prints_only_the_summary(tiny_data, capsys):
    code = cli.main(
        ["--quiet", "--epochs", "1", "--data-dir", str(tiny_data / "data"), "--out-dir", str(tiny_data / "o")]
    )
    assert code == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "epoch " not in captured.out and "test accuracy" in captured.out
