"""A Triton / KServe model repository beside the artifacts, as `tritonserver --model-repository` loads it:

    model_repository/fashion-softmax/config.pbtxt      platform, batch limit, tensors
    model_repository/fashion-softmax/labels.txt        one label per line, line = class id
    model_repository/fashion-softmax/<N>/model.onnx    N = 1 + the largest version already there

A version folder is staged whole, then renamed into place: earlier versions are
never touched and stay loadable while a new one is written.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

REPOSITORY = "model_repository"


def model_folder(out_dir: Path, model_name: str) -> Path:
    return out_dir / REPOSITORY / model_name


def next_version(folder: Path) -> int:
    """Triton's versions are integer folder names; the next one is 1 + the largest (1 in an empty repository)."""
    versions = [int(p.name) for p in folder.glob("*") if p.is_dir() and p.name.isdigit()] if folder.exists() else []
    return max(versions, default=0) + 1


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


def stage(staging: Path, model_path: Path, config: str, labels: tuple[str, ...]) -> Path:
    """The repository's new files in `staging/model_repository/`, ready for `publish`; returns that folder."""
    staged = staging / REPOSITORY
    (staged / "version").mkdir(parents=True)
    shutil.copy2(model_path, staged / "version" / "model.onnx")
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
