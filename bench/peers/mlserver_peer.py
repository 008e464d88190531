"""MLServer serving model.onnx through a custom runtime: V2 at the V2 infer path, a raw PNG body at /predict
(a custom handler); `parallel_workers` inference processes beside the HTTP process (0: inference in it).

    .peers/mlserver/bin/python -m bench.peers.mlserver_peer --model artifacts/model.onnx --port 8001

Writes settings.json and model-settings.json into the working folder and runs `mlserver start` there (its
metrics and environments folders land there too). Needs uvloop < 0.22: with 0.23 the parallel workers fail to
load the model ("There is no current event loop"). The handler's annotation is evaluated at definition (no
`from __future__ import annotations`): FastAPI reads it through MLServer's wrapper of the method.
"""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import Body
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.handlers import custom_handler
from mlserver.types import InferenceRequest, InferenceResponse

from bench.peers.onnx_model import MODEL_NAME, OnnxModel, arguments, png_answer, png_pixels
from harness import free_port


class FashionRuntime(MLModel):
    async def load(self) -> bool:
        self.model = OnnxModel(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        pixels = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        probabilities = self.model.predict(pixels)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("probabilities", probabilities)]
        )

    @custom_handler(rest_path="/predict")
    async def png(self, body: Annotated[bytes, Body(media_type="image/png")]) -> dict:
        return png_answer(self.model.predict(png_pixels(body)))


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    # debug off: no access log line per request, as on the other servers (MLServer's default is on)
    settings = {"host": "127.0.0.1", "http_port": args.port, "grpc_port": free_port(), "metrics_port": free_port(),
                "parallel_workers": args.workers, "debug": False}  # fmt: skip
    model = {"name": MODEL_NAME, "implementation": f"{__spec__.name}.FashionRuntime",
             "parameters": {"uri": str(Path(args.model).resolve())}}  # fmt: skip
    Path("settings.json").write_text(json.dumps(settings))
    Path("model-settings.json").write_text(json.dumps(model))
    mlserver = str(Path(sys.executable).with_name("mlserver"))
    os.execv(mlserver, [mlserver, "start", "."])


if __name__ == "__main__":
    main()
