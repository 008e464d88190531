"""Fixtures for the serving tests: apps around the small model (tests/conftest.py), responses checked."""

from __future__ import annotations

import shutil

import pytest
from flask import Flask

from harness.openapi_check import CheckedClient
from serving import create_app


@pytest.fixture(autouse=True)
def responses_match_the_openapi_document(monkeypatch):
    """Every test client here checks each response against serving/openapi.yaml (harness/openapi_check.py)."""
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
