"""Memory per extra model version a worker serves: RSS of a process that loads the model repository with
`latest` (one version) and with `all` (K versions), each in a fresh process.

    python -m bench.version_memory [--model-dir artifacts] [--versions 8]    (part of make bench)

The K versions are copies of the current export in a temporary repository (each loaded as its own
onnxruntime session, as distinct exports are). Prints KiB per extra version, writes bench/results/versions.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import ROOT

# Run in a fresh interpreter: import the service, load the repository with the policy, answer with VmRSS (KiB).
PROBE = """
import json, os, sys
from harness.server import rss_kib
from serving.repository import ModelRepository, VersionPolicy
served = ModelRepository(sys.argv[1], VersionPolicy.parse(sys.argv[2])).load()
print(json.dumps({"versions": len(served.versions), "rss_kib": rss_kib(os.getpid())}))
"""


def repository_of(model_dir: Path, count: int, work: Path) -> Path:
    """A copy of the artifacts whose repository holds `count` versions of the current model, the last current."""
    target = work / "artifacts"
    manifest = json.loads((model_dir / "model.json").read_text())
    folder = target / manifest["model_repository"]["path"]
    folder.mkdir(parents=True)
    for name in ("config.pbtxt", "labels.txt"):
        shutil.copy2(model_dir / manifest["model_repository"]["path"] / name, folder / name)
    for number in range(1, count + 1):
        version = folder / str(number)
        version.mkdir()
        shutil.copy2(model_dir / "model.onnx", version / "model.onnx")
        (version / "model.json").write_text(json.dumps({**manifest, "model_repository": {
            "path": manifest["model_repository"]["path"], "version": number}}))  # fmt: skip
    for name in ("model.onnx", "model.json"):
        shutil.copy2(folder / str(count) / name, target / name)
    return target


def rss(model_dir: Path, policy: str) -> dict:
    command = [sys.executable, "-c", PROBE, str(model_dir), policy]
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT, timeout=300).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--versions", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per policy; medians are reported")
    parser.add_argument("--report", type=Path, default=ROOT / "bench/results/versions.json")
    args = parser.parse_args()
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"version_memory: no model in {args.model_dir}; run `make train-export` first")
    work = Path(tempfile.mkdtemp(prefix="version-memory-"))
    try:
        model_dir = repository_of(args.model_dir, args.versions, work)
        runs = {policy: [rss(model_dir, policy) for _ in range(args.repeats)] for policy in ("latest", "all")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one, many = (sorted(run["rss_kib"] for run in runs[policy])[args.repeats // 2] for policy in ("latest", "all"))
    loaded = runs["all"][0]["versions"]
    per_version = (many - one) / (loaded - 1)
    report = {"versions": loaded, "rss_kib_latest": one, "rss_kib_all": many, "kib_per_extra_version": per_version,
              "model_onnx_bytes": (args.model_dir / "model.onnx").stat().st_size, "runs": runs}  # fmt: skip
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")
    model_kib = report["model_onnx_bytes"] / 1024
    print(f"one version: RSS {one / 1024:.1f} MiB; {loaded} versions: {many / 1024:.1f} MiB; "
          f"{per_version:.0f} KiB per extra version (model.onnx {model_kib:.0f} KiB)")  # fmt: skip
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
