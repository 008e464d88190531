"""LitServe serving model.onnx: one LitAPI per route (a raw PNG body at /predict, V2 JSON at the V2 infer path),
2 inference workers each, 2 HTTP server processes.

    .peers/litserve/bin/python -m bench.peers.litserve_peer --model artifacts/model.onnx --port 8001
"""

from typing import Annotated

import litserve
from fastapi import Body

from bench.peers.onnx_model import V2_INFER, OnnxModel, arguments, png_answer, png_pixels, v2_answer, v2_pixels


class PngAPI(litserve.LitAPI):
    """A raw image body: FastAPI hands over the bytes only with this annotation (a bare parameter is read as JSON),
    evaluated at definition: no `from __future__ import annotations` in this module."""

    def __init__(self, model_path: str, **options):
        super().__init__(**options)
        self.model_path = model_path

    def setup(self, device):
        self.model = OnnxModel(self.model_path)

    def decode_request(self, request: Annotated[bytes, Body(media_type="image/png")]):
        return png_pixels(request)

    def predict(self, pixels):
        return self.model.predict(pixels)

    def encode_response(self, probabilities):
        return png_answer(probabilities)


class V2JsonAPI(PngAPI):
    """A V2 JSON request, parsed by LitServe's HTTP process (the default decode path for a JSON body)."""

    def decode_request(self, request):
        return v2_pixels(request)

    def encode_response(self, probabilities):
        return v2_answer(probabilities)


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    apis = [PngAPI(args.model, api_path="/predict"), V2JsonAPI(args.model, api_path=V2_INFER)]
    server = litserve.LitServer(apis, accelerator="cpu", devices=1, workers_per_device=args.workers)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=args.workers, generate_client_file=False,
               log_level="warning")  # fmt: skip


if __name__ == "__main__":
    main()
