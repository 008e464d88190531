"""`python -m training.rollback N` (make rollback VERSION=N): make model repository version N the current
model again. The version is checked as an export is checked, then published the way an export is (staged,
renamed into artifacts/, the manifest last), so every serving worker takes it by live reload.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from training import repository
from training.arguments import ArgumentParser, UsageError, positive
from training.repository import ARTIFACT_FILES


class RollbackError(Exception):
    """Version N cannot be made current; the message says why in one line. Nothing was changed."""


def rollback(out_dir: Path, version: int) -> dict:
    """Check version `version` of the model in `out_dir` and make it current; returns its manifest."""
    current = _read_manifest(out_dir / "model.json", "no current model")
    folder = out_dir / current.get("model_repository", {}).get("path", repository.REPOSITORY)
    source = folder / str(version)
    if not source.is_dir():
        found = ", ".join(map(str, repository.versions(folder))) or "none"
        raise RollbackError(f"no version {version} in {folder} (versions there: {found})")
    manifest = _read_manifest(source / "model.json", f"version {version} has no usable manifest")
    _check(source, manifest, current, version)
    files = [name for name in ARTIFACT_FILES if (source / name).is_file()]  # the manifest is the last one
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=".staging-"))
    try:
        for name in files:
            shutil.copy2(source / name, staging / name)
        repository.make_current(staging, out_dir, files, ARTIFACT_FILES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _read_manifest(path: Path, problem: str) -> dict:
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise RollbackError(f"{problem}: cannot read {path} ({error})") from error
    if not isinstance(manifest, dict):
        raise RollbackError(f"{problem}: {path} is not a JSON object")
    return manifest


def _check(source: Path, manifest: dict, current: dict, version: int) -> None:
    """What an export checks before publishing, on the files as they are: sha256, ONNX checker, onnxruntime
    answering probabilities; and what the server checks before a swap: the same input, output and labels."""
    if manifest.get("model_repository", {}).get("version") != version:
        raise RollbackError(f"{source}/model.json does not name version {version}: it is not that version's export")
    model_path = source / manifest.get("model_file", "model.onnx")
    try:
        model_bytes = model_path.read_bytes()
    except OSError as error:
        raise RollbackError(f"version {version} has no model: {error}") from error
    if hashlib.sha256(model_bytes).hexdigest() != manifest.get("sha256"):
        raise RollbackError(f"{model_path} does not match the sha256 in its model.json: it was changed or damaged")
    try:
        onnx.checker.check_model(str(model_path), full_check=True)
        session = onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
        (graph_input,) = session.get_inputs()
        blank = np.zeros((2, *graph_input.shape[1:]), dtype=np.float32)
        (probabilities,) = session.run([manifest["output"]["name"]], {graph_input.name: blank})
    except Exception as error:  # onnx and onnxruntime raise their own exception types for bad graphs
        raise RollbackError(f"{model_path} is not a usable model ({error})") from error
    labels = manifest.get("labels") or []
    if probabilities.shape != (2, len(labels)) or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3):
        raise RollbackError(f"version {version} does not answer {len(labels)} probabilities per image")
    for key in ("labels", "input", "output"):
        if manifest.get(key) != current.get(key):
            raise RollbackError(f"version {version} has other {key} than the served model: the server would refuse it")


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m training.rollback", description=__doc__.splitlines()[0])
    parser.add_argument("version", type=positive(int), help="the model repository version to make current")
    parser.add_argument("--out-dir", type=Path, default=Path("artifacts"), help="the served artifacts folder")
    try:
        args = parser.parse_args(argv)
        manifest = rollback(args.out_dir, args.version)
    except UsageError as error:
        print(f"python -m training.rollback: error: {error}", file=sys.stderr)
        return 2
    except RollbackError as error:
        print(f"python -m training.rollback: refused: {error}; nothing was changed", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"python -m training.rollback: error: {error.strerror or error}: {error.filename or ''}", file=sys.stderr)
        return 1
    print(f"version {args.version} ({manifest['version']}) is current in {args.out_dir}/; "
          "a running server takes it within its reload interval (or at once on SIGHUP)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
