"""The data search: torchvision layout, download, the Debian copy, and the one-line failure."""

import numpy as np
import pytest
import torch
from torchvision.datasets import FashionMNIST

from harness.images import synthetic_images, write_idx_set
from training.data import LABELS, DataNotFoundError, load_fashion_mnist


@pytest.fixture(autouse=True)
def unreachable_download(monkeypatch):
    """torchvision's download tries a closed local port instead of the internet: fails at once."""
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])


def test_reads_torchvision_layout_from_data_dir(tmp_path):
    write_idx_set(tmp_path / "FashionMNIST" / "raw", train_count=600, test_count=200)
    train, test = load_fashion_mnist(tmp_path, system_dir=tmp_path / "nowhere")
    assert train.images.shape == (600, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (200, 28, 28) and test.labels.dtype == torch.int64
    images, labels = synthetic_images(600, 0)
    assert np.array_equal(train.images.numpy(), images)
    assert np.array_equal(train.labels.numpy(), labels)


def test_unpacks_the_debian_copy_when_download_fails(tmp_path):
    system = tmp_path / "usr-share-datasets"
    write_idx_set(system, train_count=300, test_count=100, gz=True)
    train, test = load_fashion_mnist(tmp_path / "data", system_dir=system)
    assert len(train.images) == 300 and len(test.images) == 100
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir() if not p.name.endswith(".gz")) == sorted(
        ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
    )
    # the second time it is found in the data dir itself
    again, _ = load_fashion_mnist(tmp_path / "data", download=False, system_dir=tmp_path / "gone")
    assert torch.equal(again.images, train.images)


def test_a_corrupt_copy_in_data_dir_is_replaced_by_the_debian_copy(tmp_path):
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    write_idx_set(raw)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03truncated")
    system = tmp_path / "system"
    write_idx_set(system, train_count=50, test_count=20, gz=True)
    train, _ = load_fashion_mnist(tmp_path / "data", system_dir=system)
    assert len(train.images) == 50


def test_nothing_found_names_all_three_remedies(tmp_path):
    with pytest.raises(DataNotFoundError) as caught:
        load_fashion_mnist(tmp_path / "data", system_dir=tmp_path / "nowhere")
    message = str(caught.value)
    assert "\n" not in message
    assert "--data-dir" in message and "download" in message and "dataset-fashion-mnist" in message
    assert str(tmp_path / "data") in message


def test_labels_are_torchvisions():
    assert LABELS == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip
