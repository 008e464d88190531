"""API tokens for tests: issue one into a hash file (remembered, so no log of the run may show it), and one
request for every URL rule of the app, to send with and without one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.images import encode, garment
from harness.v2_bodies import MODEL

ISSUED_TOKENS: list[str] = []  # every token a test made: none may appear in any log of the run (tests/conftest.py)


def issue_token(token_file: Path, name: str) -> str:
    """A new token named `name` in `token_file` (serving/tokens.py), remembered for the run's log check."""
    from serving import tokens  # the serving half, only for the tests that use tokens

    token = tokens.add(token_file, name)
    ISSUED_TOKENS.append(token)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


PNG = encode(garment(3, np.random.default_rng(0)), "PNG")
INFER_BODY = json.dumps({"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0] * 784}]})


def requests_by_rule(version: str) -> dict[str, tuple[str, str, dict]]:
    """One request for every URL rule of the app: rule -> (method, path, keyword arguments of the client's open)."""
    png = {"data": PNG, "content_type": "image/png"}
    infer = {"data": INFER_BODY, "content_type": "application/json"}
    return {
        "/predict": ("POST", "/predict", png),
        "/health": ("GET", "/health", {}),
        "/ready": ("GET", "/ready", {}),
        "/metadata": ("GET", "/metadata", {}),
        "/metrics": ("GET", "/metrics", {}),
        "/openapi.json": ("GET", "/openapi.json", {}),
        "/": ("GET", "/", {}),
        "/static/<name>": ("GET", "/static/page.js", {}),
        "/docs": ("GET", "/docs", {}),
        "/docs/<name>": ("GET", "/docs/swagger-ui.css", {}),
        "/artifacts/<name>": ("GET", "/artifacts/weights.png", {}),
        "/v2": ("GET", "/v2", {}),
        "/v2/health/live": ("GET", "/v2/health/live", {}),
        "/v2/health/ready": ("GET", "/v2/health/ready", {}),
        "/v2/models/<name>": ("GET", f"/v2/models/{MODEL}", {}),
        "/v2/models/<name>/versions/<version>": ("GET", f"/v2/models/{MODEL}/versions/{version}", {}),
        "/v2/models/<name>/ready": ("GET", f"/v2/models/{MODEL}/ready", {}),
        "/v2/models/<name>/versions/<version>/ready": ("GET", f"/v2/models/{MODEL}/versions/{version}/ready", {}),
        "/v2/models/<name>/infer": ("POST", f"/v2/models/{MODEL}/infer", infer),
        "/v2/models/<name>/versions/<version>/infer": ("POST", f"/v2/models/{MODEL}/versions/{version}/infer", infer),
        "/v2/repository/index": ("POST", "/v2/repository/index", {"data": b"{}", "content_type": "application/json"}),
    }
