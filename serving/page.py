"""The page a person uses (GET /, serving/static/), Swagger UI on /openapi.json (GET /docs), and the
pictures the export drew (GET /artifacts/<name>). Files only: the page calls the API like any client.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, current_app, send_from_directory

from serving.errors import ServiceError

bp = Blueprint("page", __name__)

STATIC = Path(__file__).with_name("static")  # index.html, page.js, page.css; docs.html, docs.js
PAGE_FILES = frozenset(path.name for path in STATIC.iterdir() if path.is_file())  # nothing else is served
# Swagger UI 5 (renders OpenAPI 3.1) as the flask-swagger-ui wheel ships it: no CDN. Only these two are needed.
SWAGGER_UI = Path(str(files("flask_swagger_ui") / "dist"))
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})
SWAGGER_MAX_AGE = 86_400  # seconds: they change only with the package; the page's own files are revalidated
PICTURES = frozenset({"weights.png", "curves.png", "confusion.png", "predictions.png"})  # drawn by the export
# Requests only to this service; no inline script (Swagger UI's React sets inline styles, the page's need none).
PAGE_POLICY = "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'"
DOCS_POLICY = PAGE_POLICY + "; style-src 'self' 'unsafe-inline'"


@bp.get("/")
def index():
    return _send(STATIC, "index.html", policy=PAGE_POLICY)


@bp.get("/static/<name>")
def static_file(name: str):
    return _send(STATIC, _listed(name, PAGE_FILES, "/static/"), policy=PAGE_POLICY)


@bp.get("/docs")
def docs():
    return _send(STATIC, "docs.html", policy=DOCS_POLICY)


@bp.get("/docs/<name>")
def swagger_ui(name: str):
    return _send(SWAGGER_UI, _listed(name, SWAGGER_FILES, "/docs/"), max_age=SWAGGER_MAX_AGE)


@bp.get("/artifacts/<name>")
def picture(name: str):
    """A picture from the served model's folder; 404 when the export did not draw it."""
    if name not in PICTURES:
        raise ServiceError("not_found", f"{name!r} is not a picture the export draws: {', '.join(sorted(PICTURES))}")
    folder = current_app.extensions["repository"].model_dir.absolute()  # relative paths: to the server's cwd
    if not (folder / name).is_file():
        raise ServiceError("not_found", f"the served model has no {name} (an export that did not draw it)")
    return _send(folder, name)


def _listed(name: str, allowed: frozenset[str], where: str) -> str:
    """The name, if it is one of the files served there; else a JSON 404 (no other file is reachable)."""
    if name not in allowed:
        raise ServiceError("not_found", f"no file {name!r} under {where}")
    return name


def _send(folder: Path, name: str, policy: str | None = None, max_age: int | None = None):
    """A file with its type, an ETag and Last-Modified (304 on a match); no-cache unless max_age is given."""
    response = send_from_directory(folder, name, max_age=max_age)  # NotFound (JSON 404) for a missing file
    response.headers["X-Content-Type-Options"] = "nosniff"
    if policy:
        response.headers["Content-Security-Policy"] = policy
    return response
