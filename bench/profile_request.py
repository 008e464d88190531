"""The in-process cost of one single-PNG /predict: the WSGI callable called directly, no HTTP server.

    python -m bench.profile_request [--model-dir artifacts] [--requests 3000] [--top 25]

Prints microseconds per request (best of 5 timed rounds), the same for the floor beside it (a Flask route
that only decodes the PNG with Pillow, runs onnxruntime and answers with orjson: no checks, limits,
metrics or preprocessing), then our requests under cProfile, sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import tempfile
import time

import numpy as np
import onnxruntime
import orjson
from PIL import Image
from werkzeug.test import EnvironBuilder

from harness.images import GARMENTS, png


def floor_app(model_dir: str):
    """The least a Flask + Pillow + onnxruntime service does per image: what no trimming of ours gets under."""
    from flask import Flask, Response, request

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1  # as serving/model.py
    session = onnxruntime.InferenceSession(f"{model_dir}/model.onnx", options, providers=["CPUExecutionProvider"])
    labels = json.loads(session.get_modelmeta().custom_metadata_map["labels"])
    input_name = session.get_inputs()[0].name
    floor = Flask("floor")

    @floor.post("/predict")
    def predict():
        image = Image.open(io.BytesIO(request.get_data(cache=False)))
        pixels = np.asarray(image, dtype=np.float32)[None, None]  # (1, 1, 28, 28): the test image is grayscale
        row = session.run(None, {input_name: pixels})[0][0].astype(np.float64).round(7).tolist()
        best = max(range(len(row)), key=row.__getitem__)
        prediction = {"label": labels[best], "class_id": best, "probability": row[best],
                      "probabilities": dict(zip(labels, row, strict=True))}  # fmt: skip
        return Response(orjson.dumps({"predictions": [prediction]}), mimetype="application/json")

    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="artifacts")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    # as under the production server: metrics in multiprocess mode, samples in files (serving/server.py)
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fashion-softmax-profile-"))
    from serving import create_app  # prometheus_client picks its value store when first imported

    app = create_app({"MODEL_DIR": args.model_dir, "MODEL_RELOAD_INTERVAL": 0})
    environ = EnvironBuilder(
        path="/predict", method="POST", data=png(GARMENTS[3]), content_type="image/png"
    ).get_environ()
    environ["wsgi.input_terminated"] = True  # as the production server gives it (serving/rsgi.py)
    body = environ["wsgi.input"].getvalue()

    def one_request(wsgi_app=app) -> None:
        environ["wsgi.input"] = io.BytesIO(body)
        status = []
        chunks = wsgi_app(environ, lambda s, headers, exc_info=None: status.append(s))
        b"".join(chunks)
        if not status[0].startswith("200"):
            sys.exit(f"unexpected status {status[0]}")

    floor = floor_app(args.model_dir)
    for name, wsgi_app in (("/predict", app), ("floor", floor), ("/predict", app), ("floor", floor)):
        for _ in range(200):  # warm-up: imports, caches, onnxruntime's first runs
            one_request(wsgi_app)
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(args.requests):
                one_request(wsgi_app)
            rounds.append((time.perf_counter() - started) / args.requests * 1e6)
        print(f"{name}: {min(rounds):.1f} us per request (best of 5 rounds of {args.requests}; all: "
              f"{', '.join(f'{r:.0f}' for r in rounds)})")  # fmt: skip

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.requests):
        one_request()
    profiler.disable()
    stats = pstats.Stats(profiler)
    print(f"under cProfile: {stats.total_tt / args.requests * 1e6:.1f} us per request")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
