"""Test helpers shared by both halves: IDX files, tiny Fashion-MNIST-like data, API tokens."""

from __future__ import annotations

import gzip
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ISSUED_TOKENS: list[str] = []  # every token a test made: none may appear in any log of the run (tests/conftest.py)


def skip_or_fail(reason: str):
    """Optional things may skip on a user's machine; under CI=true they must run or fail."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    """An image (or uint8 pixels) as the bytes of an image file in `fmt` ("PNG", "JPEG", ...)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format torchvision reads: magic (0, 0, dtype 0x08 ubyte, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def garment(label: int, rng: np.random.Generator, noise: int = 40) -> np.ndarray:
    """A fake garment of class `label`, light on black: a bright band at rows 2+2k; (28, 28) uint8."""
    image = rng.integers(0, noise, size=(28, 28)) if noise else np.zeros((28, 28), dtype=np.int64)
    image[2 + 2 * label : 5 + 2 * label, 4:24] += 200
    return image.clip(0, 255).astype(np.uint8)


def synthetic_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable fake garments, (count, 28, 28) uint8, and their labels (count,) uint8."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = np.stack([garment(int(label), rng) for label in labels])
    return images, labels.astype(np.uint8)


def write_idx_set(folder: Path, train_count: int = 600, test_count: int = 200, gz: bool = False) -> None:
    """The four Fashion-MNIST files in `folder`, gzipped (Debian layout) or not (torchvision raw/)."""
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count, seed in (("train", train_count, 0), ("t10k", test_count, 1)):
        images, labels = synthetic_images(count, seed)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def issue_token(token_file: Path, name: str) -> str:
    """A new token named `name` in `token_file` (serving/tokens.py), remembered for the run's log check."""
    from serving import tokens  # the serving half, only for the tests that use tokens

    token = tokens.add(token_file, name)
    ISSUED_TOKENS.append(token)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
