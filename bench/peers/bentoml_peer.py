"""BentoML serving model.onnx: one service, two APIs (a raw PNG body at /predict, V2 JSON at the V2 infer path),
2 worker processes.

    .peers/bentoml/bin/python -m bench.peers.bentoml_peer --model artifacts/model.onnx --port 8001

`bentoml serve` imports this module in every worker: the model path and the worker count reach the service
through the environment. A positional-only parameter takes the whole body (bytes: as sent, not parsed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import bentoml

from bench.peers.onnx_model import V2_INFER, OnnxModel, arguments, png_answer, png_pixels, v2_answer, v2_pixels

MODEL = "BENCH_PEER_MODEL"
WORKERS = "BENCH_PEER_WORKERS"


# no log line per request, as on the other servers
@bentoml.service(workers=int(os.environ.get(WORKERS, "1")), logging={"access": {"enabled": False}})
class FashionSoftmax:
    def __init__(self):
        self.model = OnnxModel(os.environ[MODEL])

    @bentoml.api(route="/predict")
    def png(self, body: bytes, /) -> dict:
        return png_answer(self.model.predict(png_pixels(body)))

    @bentoml.api(route=V2_INFER)
    def infer(self, inputs: list[dict[str, Any]]) -> dict:
        return v2_answer(self.model.predict(v2_pixels({"inputs": inputs})))


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    os.environ |= {MODEL: str(Path(args.model).resolve()), WORKERS: str(args.workers), "BENTOML_DO_NOT_TRACK": "true",
                   "BENTOML_HOME": str(Path("bentoml").resolve())}  # fmt: skip
    bentoml_cli = str(Path(sys.executable).with_name("bentoml"))
    os.execv(bentoml_cli, [bentoml_cli, "serve", f"{__spec__.name}:FashionSoftmax", "--host", "127.0.0.1",
                           "--port", str(args.port)])  # fmt: skip


if __name__ == "__main__":
    main()
