"""Fixtures for the serving tests: a small real model exported into a temporary folder, and apps around it."""

from __future__ import annotations

import shutil

import pytest
import torch
from flask import Flask

from serving import create_app
from tests.helpers import synthetic_images
from tests.serving.openapi_check import CheckedClient
from training.data import LABELS, Split
from training.export import TrainingSummary, export
from training.train import TrainConfig, fit


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """artifacts/ of a model trained briefly on synthetic garments (class k = a bright band at rows 2+2k)."""
    folder = tmp_path_factory.mktemp("artifacts")
    splits = []
    for count, seed in ((2048, 0), (256, 1)):
        images, labels = synthetic_images(count, seed)
        splits.append(Split(torch.from_numpy(images), torch.from_numpy(labels).long()))
    config = TrainConfig(epochs=3, batch_size=64)
    result = fit(config, *splits, torch.device("cpu"))
    summary = TrainingSummary(config.to_dict(), "cpu", result.seconds, result.history)
    export(result.net, summary, *splits, LABELS, folder)
    return folder


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document(monkeypatch):
    """Every test client here checks each response against serving/openapi.yaml (tests/serving/openapi_check.py)."""
    monkeypatch.setattr(Flask, "test_client_class", CheckedClient)


@pytest.fixture
def app(model_dir):
    return create_app({"MODEL_DIR": str(model_dir), "TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def copy_model(model_dir, tmp_path):
    """A private copy of the artifacts that a test may damage."""
    target = tmp_path / "artifacts"
    shutil.copytree(model_dir, target)
    return target
