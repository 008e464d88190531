"""Image fixtures: encoded files, fake garments, synthetic Fashion-MNIST-like sets as IDX files, multipart bodies.

png(pixels)                  # (28, 28) uint8 -> PNG bytes
GARMENTS[3]                  # a fake Dress, light on black: a bright band at rows 8-10
write_idx_set(folder)        # the four Fashion-MNIST files, synthetic
"""

from __future__ import annotations

import base64
import gzip
import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    """An image (or uint8 pixels) as the bytes of an image file in `fmt` ("PNG", "JPEG", ...)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png(pixels: Image.Image | np.ndarray) -> bytes:
    return encode(pixels, "PNG")


def from_data_url(url: str) -> Image.Image:
    """The PNG in a `data:image/png;base64,...` URL (what `?return_input=true` answers, a canvas gives)."""
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix), url[:40]
    image = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :], validate=True)))
    assert image.format == "PNG"
    return image


def garment(label: int, rng: np.random.Generator, noise: int = 40) -> np.ndarray:
    """A fake garment of class `label`, light on black: a bright band at rows 2+2k; (28, 28) uint8."""
    image = rng.integers(0, noise, size=(28, 28)) if noise else np.zeros((28, 28), dtype=np.int64)
    image[2 + 2 * label : 5 + 2 * label, 4:24] += 200
    return image.clip(0, 255).astype(np.uint8)


GARMENTS = {label: garment(label, np.random.default_rng(7)) for label in range(10)}  # one of each class


def synthetic_images(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Separable fake garments, (count, 28, 28) uint8, and their labels (count,) uint8."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = np.stack([garment(int(label), rng) for label in labels])
    return images, labels.astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format torchvision reads: magic (0, 0, dtype 0x08 ubyte, ndim), big-endian dims, data."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


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


def multipart(
    parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary", part_type: str | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body of (field name, file name or None, content) parts, and its Content-Type.

    part_type: a Content-Type header on every part that has a file name (as browsers and curl send).
    """
    chunks = []
    for name, filename, data in parts:
        head = f'Content-Disposition: form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        if filename and part_type:
            head += f"\r\nContent-Type: {part_type}"
        chunks.append(f"--{boundary}\r\n{head}\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(chunks) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"
