"""PyTriton serving model.onnx: NVIDIA's Triton Inference Server (its own HTTP front end, V2 JSON and the binary
extension) with the model as a Python callable, one instance per worker (their callables run in this process).

    .peers/pytriton/bin/python -m bench.peers.pytriton_peer --model artifacts/model.onnx --port 8001

Triton's Python backend stub loads libpython: LD_LIBRARY_PATH names the running interpreter's lib folder first,
or the stub may link another Python than this one. Triton takes V2 requests only: no raw PNG body.
"""

from __future__ import annotations

import os
import sysconfig

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from bench.peers.onnx_model import MODEL_NAME, OnnxModel, arguments

MAX_BATCH = 256  # as the artifact's serving limit


def inference(model: OnnxModel):
    @batch
    def infer(image: np.ndarray) -> dict[str, np.ndarray]:
        return {"probabilities": model.predict(image)}  # (N, 1, 28, 28) -> (N, 10)

    return infer


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    libraries = [sysconfig.get_config_var("LIBDIR"), os.environ.get("LD_LIBRARY_PATH", "")]
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, libraries))
    config = TritonConfig(http_address="127.0.0.1", http_port=args.port, allow_grpc=False, allow_metrics=False)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=MODEL_NAME,
            infer_func=[inference(OnnxModel(args.model)) for _ in range(max(1, args.workers))],
            inputs=[Tensor(name="image", dtype=np.float32, shape=(1, 28, 28))],
            outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(10,))],
            config=ModelConfig(max_batch_size=MAX_BATCH),
        )
        triton.serve()


if __name__ == "__main__":
    main()
