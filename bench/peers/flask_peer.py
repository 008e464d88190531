"""A bare Flask app serving model.onnx as every peer does (bench/peers/onnx_model.py): a raw PNG body at /predict, V2
JSON and the binary extension at the V2 infer path, orjson both ways, behind Granian set up as ours is
(serving/server.py build_server, through serving/rsgi.py) with 2 workers. No checks, limits, metrics, versions or
preprocessing: what Flask itself leaves to gain.

    .venv/bin/python -m bench.peers.flask_peer --model artifacts/model.onnx --port 8001

It runs in the project's own environment (Flask, Granian, onnxruntime): its column is the floor under ours.
"""

from __future__ import annotations

import os

import numpy as np
import orjson
from flask import Flask, Response, request

from bench.peers import onnx_model
from bench.peers.answers import BINARY_HEADER
from bench.peers.onnx_model import V2_INFER, OnnxModel, arguments
from serving.rsgi import BufferedWSGI
from serving.server import build_server

MODEL_VARIABLE = "FLASK_PEER_MODEL"  # how the workers learn the model's path


def create_app(model_path: str) -> Flask:
    model = OnnxModel(model_path)
    app = Flask(__name__)

    @app.get("/health")
    def health():
        return Response(b'{"status":"ok"}', content_type="application/json")

    @app.post("/predict")
    def predict():
        return _json(onnx_model.png_answer(model.predict(onnx_model.png_pixels(request.get_data(cache=False)))))

    @app.post(V2_INFER)
    def infer():
        body, split = request.get_data(cache=False), request.headers.get(BINARY_HEADER)
        if split is None:
            return _json(onnx_model.v2_answer(model.predict(onnx_model.v2_pixels(orjson.loads(body)))))
        split = int(split)
        tensor = orjson.loads(body[:split])["inputs"][0]
        pixels = np.frombuffer(body, dtype="<f4", offset=split).reshape(tensor["shape"])
        head, raw = onnx_model.v2_binary_answer(model.predict(pixels))
        text = orjson.dumps(head)
        return Response(text + raw, content_type="application/octet-stream", headers={BINARY_HEADER: str(len(text))})

    return app


def _json(answer: dict) -> Response:
    return Response(orjson.dumps(answer), content_type="application/json")


def create_rsgi_app() -> BufferedWSGI:
    """Granian's factory, in each worker."""
    return BufferedWSGI(create_app(os.environ[MODEL_VARIABLE]), max_body=None, body_timeout=60.0)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    os.environ[MODEL_VARIABLE] = args.model
    build_server(target="bench.peers.flask_peer:create_rsgi_app", address="127.0.0.1", port=args.port,
                 workers=args.workers).serve()  # fmt: skip


if __name__ == "__main__":
    main()
