"""The servers `make bench-peers` compares, and the payloads each is sent: ours first, then every peer, each
serving the same model.onnx with onnxruntime on 1 thread, with 2 workers where the server has them.

A peer is its server script (bench/peers/<module>.py, run in .peers/<environment>/, or in the project's own
environment when it has none: the bare Flask app) and where its routes are.
Every server takes the V2 payloads at the same path; a raw PNG goes where the server takes a raw body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import metadata

from bench.peers import launch
from bench.peers.onnx_model import MODEL_NAME, V2_INFER

# payload -> what the table calls it; the bodies are built in bench/bench_peers.py
PAYLOADS = {
    "png": "one 28x28 PNG, raw body",
    "v2_json_1": "V2 JSON FP32, batch 1",
    "v2_binary_64": "V2 binary FP32, batch 64",
    "v2_json_64": "V2 JSON FP32, batch 64",
}


@dataclass(frozen=True)
class Peer:
    name: str  # the report's key
    label: str  # the table's column, before the version
    package: str  # the distribution whose pinned version the report names
    environment: str | None  # .peers/<environment>/, from bench/peers/requirements/<environment>.txt; None: ours
    module: str  # the server script, run with the environment's Python
    ready_path: str  # 200 once the model answers
    png_path: str | None  # where a raw PNG body goes; None: no route of the server takes one
    workers: int = 2  # the script's --workers

    def version(self) -> str:
        """The package's version pinned in the requirements file ('?' when not pinned there), or as installed here."""
        if self.environment is None:
            return metadata.version(self.package)
        text = (launch.REQUIREMENTS / f"{self.environment}.txt").read_text()
        found = re.search(rf"^{re.escape(self.package)}==(\S+)", text, re.MULTILINE | re.IGNORECASE)
        return found.group(1) if found else "?"

    def title(self) -> str:
        return f"{self.label} {self.version()}" + ("" if self.workers == 2 else f" ({self.workers or 1} process)")

    def path(self, payload: str) -> str | None:
        return self.png_path if payload == "png" else V2_INFER


OURS = "ours"
OURS_PATHS = {"png": "/predict"}  # and the V2 payloads at V2_INFER
V2_READY = f"/v2/models/{MODEL_NAME}/ready"

PEERS = [
    Peer("mlserver", "MLServer", "mlserver", "mlserver", "bench.peers.mlserver_peer", V2_READY, "/predict"),
    # MLServer as one process (parallel_workers 0: inference in the HTTP process), its other usual set-up
    Peer(
        "mlserver_1proc",
        "MLServer",
        "mlserver",
        "mlserver",
        "bench.peers.mlserver_peer",
        V2_READY,
        "/predict",
        workers=0,
    ),
    Peer(
        "kserve", "KServe", "kserve", "kserve", "bench.peers.kserve_peer", V2_READY, f"/v1/models/{MODEL_NAME}:predict"
    ),
    Peer("litserve", "LitServe", "litserve", "litserve", "bench.peers.litserve_peer", "/health", "/predict"),
    Peer("bentoml", "BentoML", "bentoml", "bentoml", "bench.peers.bentoml_peer", "/readyz", "/predict"),
    Peer("pytriton", "PyTriton", "nvidia-pytriton", "pytriton", "bench.peers.pytriton_peer", V2_READY, None),
    # what a hand-written Flask app does with nothing but decoding, onnxruntime and orjson: the floor under ours
    Peer("flask", "bare Flask", "flask", None, "bench.peers.flask_peer", "/health", "/predict"),
]
