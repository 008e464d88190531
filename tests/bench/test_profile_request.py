"""bench/profile_request.py, as the closing notes quote it: our /predict, the same with tokens configured and a
right token sent, and the floor beside them all answer 200 and are timed; the cProfile listing follows."""

from __future__ import annotations

import re
import subprocess
import sys

from harness import ROOT


def test_our_request_path_and_the_floor_are_timed_side_by_side(model_dir):
    command = [sys.executable, "-m", "bench.profile_request", "--model-dir", str(model_dir), "--requests", "50",
               "--top", "3"]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr  # each app answered 200 (it exits otherwise)
    timed = re.findall(r"^(/predict|/predict with a token|floor): ([\d.]+) us per request", run.stdout, re.MULTILINE)
    assert [name for name, _ in timed] == ["/predict", "/predict with a token", "floor"] * 2
    assert all(float(us) > 0 for _, us in timed)
    assert re.search(r"^authentication adds -?[\d.]+ us per request", run.stdout, re.MULTILINE)
    assert "under cProfile" in run.stdout and "ncalls  tottime" in run.stdout.split("under cProfile")[1]
