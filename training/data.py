"""Find Fashion-MNIST and read it with torchvision, as uint8 tensors.

Search order: `data_dir` in torchvision's layout (DIR/FashionMNIST/raw/), then
torchvision's download, then Debian's `dataset-fashion-mnist` copy unpacked into
that layout. If none works, one `DataNotFoundError` names all three remedies.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.datasets import FashionMNIST

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
LABELS: tuple[str, ...] = tuple(FashionMNIST.classes)  # index = class id


class DataNotFoundError(Exception):
    """No copy of Fashion-MNIST could be found, downloaded or unpacked."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8, light garment on black
    labels: torch.Tensor  # (N,) int64 class ids


def load_fashion_mnist(
    data_dir: Path | str, download: bool = True, system_dir: Path | str = DEBIAN_DIR
) -> tuple[Split, Split]:
    """(train, test) splits, from the first source that works."""
    data_dir, system_dir = Path(data_dir), Path(system_dir)
    problems = []
    for source in ("data_dir", "download", "system"):
        try:
            if source == "download":
                if not download:
                    continue
                _read(data_dir, download=True)
            elif source == "system":
                _unpack_system_copy(system_dir, data_dir / "FashionMNIST" / "raw")
            return _read(data_dir, download=False)
        except (RuntimeError, OSError, ValueError, EOFError) as error:
            problems.append(f"{source}: {error}".splitlines()[0])
    raise DataNotFoundError(
        f"Fashion-MNIST not found. Remedies: put the four IDX files in {data_dir}/FashionMNIST/raw/ "
        "(or pass --data-dir), allow torchvision to download them (network access), or install "
        f"Debian's dataset-fashion-mnist ({system_dir}). Tried: {'; '.join(problems)}"
    )


def _read(data_dir: Path, download: bool) -> tuple[Split, Split]:
    # torchvision prints its download progress; the CLI owns the terminal.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        train = FashionMNIST(str(data_dir), train=True, download=download)
        test = FashionMNIST(str(data_dir), train=False, download=download)
    return Split(train.data, train.targets), Split(test.data, test.targets)


def _unpack_system_copy(system_dir: Path, raw_dir: Path) -> None:
    """Gunzip the Debian copy's IDX files into torchvision's raw layout, atomically per file."""
    missing = [name for name in IDX_FILES if not (system_dir / f"{name}.gz").is_file()]
    if missing:
        raise FileNotFoundError(f"no {system_dir}/{missing[0]}.gz")
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name in IDX_FILES:
        fd, tmp = tempfile.mkstemp(dir=raw_dir, prefix=f".{name}.")
        try:
            with gzip.open(system_dir / f"{name}.gz") as src, os.fdopen(fd, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.replace(tmp, raw_dir / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
