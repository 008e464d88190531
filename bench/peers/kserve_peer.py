"""KServe's ModelServer serving model.onnx: V2 (JSON and the binary extension) at the V2 infer path, a raw PNG
body at V1 `/v1/models/fashion-softmax:predict`; 2 uvicorn worker processes.

    .peers/kserve/bin/python -m bench.peers.kserve_peer --model artifacts/model.onnx --port 8001

ModelServer hands the model to its workers by pickling it: OnnxModel drops its session then and opens it again.
Three settings ModelServer does not expose are changed below: the address, the workers' start-up allowance, and
no log line per request (as on the other servers); its workers import this module too, so they get them.
"""

from __future__ import annotations

import uuid

import kserve
import numpy as np
import uvicorn
from kserve import InferOutput, InferRequest, InferResponse
from kserve.logging import KSERVE_LOG_CONFIG
from kserve.protocol.rest import server as rest
from kserve.protocol.rest.multiprocess import server as multiprocess

from bench.peers.onnx_model import MODEL_NAME, OnnxModel, arguments, png_answer, png_pixels


class FashionModel(kserve.Model):
    def __init__(self, model_path: str):
        super().__init__(MODEL_NAME)
        self.model_path = model_path
        self.load()

    def load(self) -> bool:
        self.model = OnnxModel(self.model_path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        if not isinstance(payload, InferRequest):  # V1 with a non-JSON Content-Type: the body's bytes
            return png_answer(self.model.predict(png_pixels(payload)))
        pixels = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
        probabilities = self.model.predict(pixels)
        output = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32", data=probabilities)
        return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=[output],
                             use_binary_outputs=payload.use_binary_outputs)  # fmt: skip


def patient_health_check(process: multiprocess.RESTServerProcess, timeout: float = 5) -> bool:
    """ModelServer pings each worker every 0.5 s and kills one that does not answer within 5 s, its start-up
    included (importing KServe, unpickling the model): on a busy 2-core machine no worker ever got through.
    The same check with 60 s."""
    return ALIVE(process, timeout=max(timeout, 60))


class LoopbackConfig(uvicorn.Config):
    """uvicorn's settings as ModelServer makes them, on 127.0.0.1 instead of the 0.0.0.0 it hard-codes."""

    def __init__(self, app, **options):
        super().__init__(app, **(options | {"host": "127.0.0.1"}))


ALIVE = multiprocess.RESTServerProcess.is_alive
multiprocess.RESTServerProcess.is_alive = patient_health_check
rest.uvicorn.Config = LoopbackConfig
for logger in ("uvicorn.access", "kserve.trace"):
    KSERVE_LOG_CONFIG["loggers"][logger]["level"] = "WARNING"


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    server = kserve.ModelServer(http_port=args.port, workers=args.workers, enable_grpc=False, enable_docs_url=False,
                                enable_latency_logging=False)  # fmt: skip
    server.start([FashionModel(args.model)])


if __name__ == "__main__":
    main()
