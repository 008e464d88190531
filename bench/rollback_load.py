"""A rollback under load: `python -m training.rollback N` while clients post to the production server.

    python -m bench.rollback_load [--model-dir artifacts] [--clients 64] [--seconds 15]   (part of make bench-versions)

Works on a copy of the artifacts (yours stay as they are): a small model trained on synthetic garments is
published there as the next version, so the trained one is the version to go back to. The server (2 workers,
settings as `make serve`) starts on the copy, `--clients` closed-loop clients post one PNG each for
`--seconds`, and a third of the way in the rollback command runs. Reports the requests that failed, when the
rolled-back version first answered and when it answered everything, counted from the command's start;
writes bench/results/rollback.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT
from harness.images import GARMENTS, png
from harness.loadgen import Load
from harness.publish import publish_model
from harness.server import ProductionServer


def measure(model_dir: Path, work: Path, clients: int, seconds: float) -> dict:
    models = work / "artifacts"
    shutil.copytree(model_dir, models)
    trained = json.loads((models / "model.json").read_text())
    back_to = trained["model_repository"]["version"]
    newer = publish_model(models, seed=1)["version"]  # the version the rollback leaves
    body = png(GARMENTS[3])
    with (
        ProductionServer(models, work / "server.log") as server,
        Load(f"{server.url}/predict", body, "image/png", clients=clients, limit_s=seconds + 120) as load,
    ):
        time.sleep(seconds / 3)
        started = time.monotonic()
        command = [sys.executable, "-m", "training.rollback", str(back_to), "--out-dir", str(models)]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=ROOT)
        returned = time.monotonic()
        time.sleep(max(0.0, started + seconds * 2 / 3 - time.monotonic()))
    answers = load.answers
    old = [answer.at for answer in answers if answer.version == trained["version"] and answer.at > started]
    left = [answer.at for answer in answers if answer.version == newer]
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": len(answers),
        "failed": len(load.failed()),
        "failures": sorted({str(answer.status) for answer in load.failed()}),
        "command_s": round(returned - started, 2),
        "first_answer_of_the_rolled_back_version_s": round(min(old) - started, 2) if old else None,
        "last_answer_of_the_version_left_s": round(max(left) - started, 2) if left else None,
        "answers_after_the_rollback": len(old),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--report", type=Path, default=ROOT / "bench/results/rollback.json")
    args = parser.parse_args()
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"rollback_load: no model in {args.model_dir}; run `make train-export` first")
    work = Path(tempfile.mkdtemp(prefix="rollback-"))
    try:
        result = measure(args.model_dir, work, args.clients, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(result, indent=2) + "\n")
    print(f"rollback under load, {result['clients']} clients: {result['failed']} of {result['requests']} requests "
          f"failed; the command took {result['command_s']} s; the rolled-back version answered "
          f"{result['first_answer_of_the_rolled_back_version_s']} s after it started, and everything from "
          f"{result['last_answer_of_the_version_left_s']} s on; report: {args.report}")  # fmt: skip
    sys.exit(1 if result["failed"] or not result["answers_after_the_rollback"] else 0)


if __name__ == "__main__":
    main()
