"""The in-process cost of one single-PNG /predict: the WSGI callable called directly, no HTTP server.

    python -m bench.profile_request [--model-dir artifacts] [--requests 3000] [--top 25]
    python -m bench.profile_request --against round3-start [--rounds 5]

Prints microseconds per request (best of 5 timed rounds) for /predict, for the same app started with a token
file (the request carrying a right token: what authentication adds), and for the floor beside them (a Flask
route that only decodes the PNG with Pillow, runs onnxruntime and answers with orjson: no checks, limits,
metrics or preprocessing), interleaved; then our requests under cProfile, sorted by own time.

With --against, the same /predict of this working tree and of a git revision (checked out in a temporary
worktree), and the floor, each in a process of its own, alternated `--rounds` times on the same model: the
medians and how much cheaper this tree and the floor are than the revision.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import orjson
from PIL import Image
from werkzeug.test import EnvironBuilder

from harness import ROOT
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


def hook_cost(app, secured, token: str, rounds: int = 20, calls: int = 2000) -> float:
    """Microseconds the token check adds per /predict: the app's before_request hooks with tokens (a right one sent)
    minus without, each the best of `rounds` interleaved rounds. A whole request is too long for a difference of a
    few microseconds to stand out of a shared machine's noise; the hooks are all that differs between the two."""
    best = {}
    for _ in range(rounds):
        for flask_app, headers in ((app, {}), (secured, {"Authorization": f"Bearer {token}"})):
            with flask_app.test_request_context("/predict", method="POST", headers=headers):
                started = time.perf_counter()
                for _ in range(calls):
                    flask_app.preprocess_request()
                seconds = (time.perf_counter() - started) / calls
            best[flask_app] = min(best.get(flask_app, seconds), seconds)
    return (best[secured] - best[app]) * 1e6


def png_request() -> dict:
    """The WSGI environ of one single-PNG /predict, its body in environ["wsgi.input"]."""
    environ = EnvironBuilder(
        path="/predict", method="POST", data=png(GARMENTS[3]), content_type="image/png"
    ).get_environ()
    environ["wsgi.input_terminated"] = True  # as the production server gives it (serving/rsgi.py)
    return environ


def requester(wsgi_app, environ: dict):
    """A function that sends the request in `environ` to the WSGI app, reads the answer, exits if not 200."""
    body = environ["wsgi.input"].getvalue()

    def one_request() -> None:
        environ["wsgi.input"] = io.BytesIO(body)
        status = []
        chunks = wsgi_app(environ, lambda s, headers, exc_info=None: status.append(s))
        b"".join(chunks)
        if not status[0].startswith("200"):
            sys.exit(f"unexpected status {status[0]}")

    return one_request


def time_requests(wsgi_app, environ: dict, requests: int, rounds: int = 5) -> list[float]:
    """Microseconds per request of `rounds` timed rounds of `requests`, after 200 untimed (imports, caches,
    onnxruntime's first runs)."""
    one_request = requester(wsgi_app, environ)
    for _ in range(200):
        one_request()
    timed = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(requests):
            one_request()
        timed.append((time.perf_counter() - started) / requests * 1e6)
    return timed


def app_in_this_process(model_dir: str, **config):
    """create_app of whichever `serving` this process imports, metrics in multiprocess mode as under the
    production server (serving/server.py): prometheus_client picks its value store when first imported."""
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="fashion-softmax-profile-"))
    from serving import create_app

    return create_app({"MODEL_DIR": model_dir, "MODEL_RELOAD_INTERVAL": 0, **config})


def against(revision: str, model_dir: str, requests: int, rounds: int) -> None:
    """This tree's /predict and `revision`'s, alternated, each timed in a fresh process that imports that tree's
    `serving` (PYTHONPATH first), on this tree's model."""
    model_dir = str(Path(model_dir).resolve())
    with tempfile.TemporaryDirectory(prefix="fashion-softmax-against-") as folder:
        other = Path(folder) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(other), revision],
                       check=True)  # fmt: skip
        try:
            runs = {"this tree": (ROOT, "ours"), revision: (other, "ours"), "floor": (ROOT, "floor")}  # tree, --time
            best: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):
                for name, (tree, app) in runs.items():
                    timed = subprocess.run(
                        [sys.executable, __file__, "--model-dir", model_dir, "--requests", str(requests),
                         "--time", app],
                        env={**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{ROOT}"},  # its serving, our harness
                        cwd=tree, check=True, capture_output=True, text=True,
                    ).stdout  # fmt: skip
                    best[name].append(float(timed))
                    print(f"{name}: {float(timed):.1f} us per request (best of 5 rounds of {requests})")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=True)
    medians = {name: statistics.median(timed) for name, timed in best.items()}
    theirs = medians[revision]
    print(f"medians of {rounds}: this tree {medians['this tree']:.1f} us, {revision} {theirs:.1f} us, the floor "
          f"{medians['floor']:.1f} us: this tree is {(1 - medians['this tree'] / theirs) * 100:.1f}% cheaper per "
          f"request than {revision}, the floor {(1 - medians['floor'] / theirs) * 100:.1f}%; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="artifacts")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--against", metavar="REVISION", help="compare with this git revision, side by side")
    parser.add_argument("--rounds", type=int, default=5, help="with --against: processes per tree, alternated")
    parser.add_argument("--time", choices=("ours", "floor"), help=argparse.SUPPRESS)  # one figure, for --against
    args = parser.parse_args()
    if args.against:
        against(args.against, args.model_dir, args.requests, args.rounds)
        return
    if args.time:
        timed_app = app_in_this_process(args.model_dir) if args.time == "ours" else floor_app(args.model_dir)
        print(min(time_requests(timed_app, png_request(), args.requests)))
        return

    from serving import tokens

    app = app_in_this_process(args.model_dir)
    folder = tempfile.TemporaryDirectory(prefix="fashion-softmax-tokens-")  # removed when the run ends
    token_file = Path(folder.name) / "tokens"
    for name in ("someone", "prometheus"):  # a few tokens: each presented token is compared with every hash
        tokens.add(token_file, name)
    token = tokens.add(token_file, "profile")
    secured = app_in_this_process(args.model_dir, TOKENS_FILE=str(token_file))
    environ = png_request()
    with_token = {**environ, "HTTP_AUTHORIZATION": f"Bearer {token}"}

    floor = floor_app(args.model_dir)
    variants = {"/predict": (app, environ), "/predict with a token": (secured, with_token), "floor": (floor, environ)}
    best = {}
    for name, (wsgi_app, request) in [*variants.items(), *variants.items()]:  # each twice, interleaved
        rounds = time_requests(wsgi_app, request, args.requests)
        best[name] = min(best.get(name, float("inf")), *rounds)
        print(f"{name}: {min(rounds):.1f} us per request (best of 5 rounds of {args.requests}; all: "
              f"{', '.join(f'{r:.0f}' for r in rounds)})")  # fmt: skip
    added = hook_cost(app, secured, token)
    print(f"authentication adds {added:.1f} us per request (target <= 5 us): the token check alone, best of 20 "
          f"rounds; the whole requests above differ by {best['/predict with a token'] - best['/predict']:.1f} us; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")  # fmt: skip

    one_request = requester(app, environ)
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
