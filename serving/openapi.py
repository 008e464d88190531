"""GET /openapi.json: the OpenAPI 3.1 document of every route (serving/openapi.yaml), read once per process."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

DOCUMENT = Path(__file__).with_name("openapi.yaml")


@cache
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


@bp.get("/openapi.json")
def openapi():
    return jsonify(document())
