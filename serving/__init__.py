"""Serving half of fashion-softmax: a Flask app around the exported ONNX model.

python -m serving       (make serve: Granian running create_app() in each worker, serving/server.py)
"""

from __future__ import annotations

import logging

from serving.model import ModelLoadError

log = logging.getLogger(__name__)

DEFAULTS = {
    "MODEL_DIR": "artifacts",  # where model.onnx and model.json are
    "MODEL_REQUIRED": True,  # False: start without a model, /ready answers 503 (debugging only)
    "VERSION_POLICY": "latest",  # repository versions loaded beside the current one: latest[:N], all, specific:N,M
    "MAX_CONTENT_LENGTH": 10 * 1024 * 1024,  # request body limit, bytes (413 above)
    "BODY_TIMEOUT": 60.0,  # seconds for a whole request body to arrive (408 after; serving/rsgi.py)
    # MAX_BATCH: images per request (413 above); unset, the model's own limit (model.json) applies
    "MAX_IMAGE_PIXELS": 40_000_000,  # width x height of one image, checked before decoding (413 above)
    "ORT_THREADS": 1,  # onnxruntime threads per worker process
    "MODEL_RELOAD_INTERVAL": 2.0,  # seconds between checks for a newly published model; 0: never reload
    "LOG_LEVEL": "INFO",  # of the `serving` loggers: reloads, request ids (WARNING: refusals only)
    "TOKENS_FILE": None,  # token hashes (serving/tokens.py); set: every route but probes and page files needs one
}


def create_app(config: dict | None = None):
    """Defaults, then FASHION_SOFTMAX_* environment variables, then `config`; loads the model once."""
    # Imported here, as the Flask tutorial does: importing the package (the server's main process does,
    # before it chooses PROMETHEUS_MULTIPROC_DIR) must not import prometheus_client, which fixes its
    # sample store (per process, or files shared by the workers) when first imported.
    from flask import Flask

    from serving.api import bp
    from serving.auth import require_tokens
    from serving.dataplane import DataPlane
    from serving.errors import register_error_handlers
    from serving.json_provider import OrjsonProvider
    from serving.metrics import Metrics
    from serving.openapi import bp as openapi_bp
    from serving.page import bp as page_bp
    from serving.preprocess import Limits
    from serving.repository import ModelRepository, VersionPolicy, reload_on_sighup
    from serving.v2 import bp as v2_bp

    app = Flask(__name__, static_folder=None)  # serving/static/ is the page's: serving/page.py serves it
    app.json = OrjsonProvider(app)  # compact, keys in insertion order: probabilities in class-id order
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("FASHION_SOFTMAX")
    app.config.update(config or {})
    app.logger.setLevel(app.config["LOG_LEVEL"])  # app.logger is the `serving` logger, with Flask's handler

    app.extensions["metrics"] = metrics = Metrics()
    metrics.install(app)
    if app.config["TOKENS_FILE"]:
        require_tokens(app)  # after metrics.install: a 401 is counted under the route it was asked of
    repository = ModelRepository(
        app.config["MODEL_DIR"],
        VersionPolicy.parse(str(app.config["VERSION_POLICY"])),
        app.config["ORT_THREADS"],
        on_reload=metrics.count_reload,
    )
    app.extensions["repository"] = repository
    try:
        repository.load()
    except ModelLoadError as error:
        if app.config["MODEL_REQUIRED"]:
            raise
        log.warning("starting without a model: %s", error)
    if app.config["MODEL_RELOAD_INTERVAL"] > 0:
        repository.watch(app.config["MODEL_RELOAD_INTERVAL"])
        reload_on_sighup(repository)
    limits = Limits(max_pixels=app.config["MAX_IMAGE_PIXELS"])
    app.extensions["dataplane"] = DataPlane(repository, limits, metrics, app.config.get("MAX_BATCH"))
    register_error_handlers(app)
    app.register_blueprint(bp)
    app.register_blueprint(v2_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(page_bp)
    return app


__all__ = ["ModelLoadError", "create_app"]
