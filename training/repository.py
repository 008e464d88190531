"""A Triton / KServe model repository beside the artifacts, as `tritonserver --model-repository` loads it:

    model_repository/fashion-softmax/config.pbtxt      platform, batch limit, tensors
    model_repository/fashion-softmax/labels.txt        one label per line, line = class id
    model_repository/fashion-softmax/<N>/model.onnx    N = 1 + the largest version already there
    model_repository/fashion-softmax/<N>/model.json    ... and the rest of that export (Triton reads model.onnx)

A version folder is a whole export, staged whole, then renamed into place: earlier versions are never
touched, stay loadable while a new one is written, and can be made current again (training.rollback).
`make_current` publishes files into artifacts/ itself, the manifest last.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

REPOSITORY = "model_repository"
# What an export publishes into artifacts/ and keeps in its version folder, in this order: the manifest, which
# names the model's sha256, comes last.
ARTIFACT_FILES = (
    "weights.npz",
    "weights.png",
    "curves.png",
    "predictions.png",
    "confusion.png",
    "novelty.png",
    "model.onnx",
    "model.json",
)


def model_folder(out_dir: Path, model_name: str) -> Path:
    return out_dir / REPOSITORY / model_name


def next_version(folder: Path) -> int:
    """Triton's versions are integer folder names; the next one is 1 + the largest (1 in an empty repository)."""
    return max(versions(folder), default=0) + 1


class Tensor(NamedTuple):
    name: str
    data_type: str  # Triton's: TYPE_FP32, TYPE_BOOL, ...
    dims: tuple[int, ...]  # without the batch dimension; () for one value per image
    labelled: bool = False  # one score per label: labels.txt names them (Triton's classification extension)


def config_pbtxt(model_name: str, max_batch: int, inputs: list[Tensor], outputs: list[Tensor]) -> str:
    """Triton's model configuration (text protobuf, ModelConfig).

    A tensor of one value per image, shape [N] in the model, is [N, 1] in Triton's API (dims may not be empty):
    `dims: [ 1 ]` with `reshape: { shape: [ ] }`, as Triton's model configuration guide says.
    """

    def entry(tensor: Tensor) -> str:
        dims = ", ".join(map(str, tensor.dims or (1,)))
        lines = [f'    name: "{tensor.name}"', f"    data_type: {tensor.data_type}", f"    dims: [ {dims} ]"]
        lines += ["    reshape: { shape: [ ] }"] if not tensor.dims else []
        lines += ['    label_filename: "labels.txt"'] if tensor.labelled else []
        return "  {\n" + "\n".join(lines) + "\n  }"

    def group(kind: str, tensors: list[Tensor]) -> str:
        return f"{kind} [\n" + ",\n".join(map(entry, tensors)) + "\n]\n"

    return (
        f'name: "{model_name}"\nplatform: "onnxruntime_onnx"\nmax_batch_size: {max_batch}\n'
        + group("input", inputs)
        + group("output", outputs)
    )


def stage(staging: Path, files: Sequence[str], config: str, labels: tuple[str, ...]) -> Path:
    """The repository's new files in `staging/model_repository/`, ready for `publish`; returns that folder.

    `files`: the export's files in `staging`, copied whole into the version folder.
    """
    staged = staging / REPOSITORY
    (staged / "version").mkdir(parents=True)
    for name in files:
        shutil.copy2(staging / name, staged / "version" / name)
    (staged / "config.pbtxt").write_text(config)
    (staged / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
    return staged


def publish(staged: Path, folder: Path, version: int) -> Path:
    """Rename the staged version folder to `folder/<version>`, then the config and labels; returns the new folder.

    os.rename refuses to replace a non-empty folder, so two exports racing for one version cannot mix files.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / str(version)
    os.rename(staged / "version", target)
    try:
        for name in ("labels.txt", "config.pbtxt"):  # the same for every version of this model
            os.replace(staged / name, folder / name)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return target


def versions(folder: Path) -> list[int]:
    """The version numbers in a model's repository folder, ascending."""
    return sorted(int(p.name) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()) if folder.exists() else []


def make_current(staging: Path, out_dir: Path, files: Sequence[str], known: Sequence[str]) -> None:
    """Rename the staged `files` into out_dir, the last one (the manifest) last; on failure put back what was there.

    Files of `known` (what an export may write) that are not among `files` are removed first: a picture of
    another model must not stay beside this one.
    """
    for name in set(known) - set(files):
        (out_dir / name).unlink(missing_ok=True)
    replaced: list[tuple[Path, Path]] = []  # (target, backup of what it replaced)
    try:
        for name in files:
            target = out_dir / name
            backup = staging / f"{name}.previous"
            if target.exists():
                shutil.copy2(target, backup)  # the old file, so it can come back
            os.replace(staging / name, target)
            if backup.exists():
                replaced.append((target, backup))
    except BaseException:
        for target, backup in reversed(replaced):
            os.replace(backup, target)
        raise
