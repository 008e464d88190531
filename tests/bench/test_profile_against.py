"""bench/profile_request.py --against: this tree, a git revision (here HEAD, checked out in a temporary worktree)
and the floor, each timed in a process of its own, and the summary the closing notes quote."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from harness import ROOT


def test_against_a_revision_times_this_tree_the_revision_and_the_floor(model_dir):
    command = [sys.executable, "-m", "bench.profile_request", "--model-dir", str(model_dir), "--requests", "50",
               "--against", "HEAD", "--rounds", "1"]  # fmt: skip
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr
    timed = re.findall(r"^(this tree|HEAD|floor): ([\d.]+) us per request", run.stdout, re.MULTILINE)
    assert [name for name, _ in timed] == ["this tree", "HEAD", "floor"]
    assert all(float(us) > 0 for _, us in timed)
    pattern = (
        r"^medians of 1: this tree ([\d.]+) us, HEAD ([\d.]+) us, the floor ([\d.]+) us: this tree is "
        r"(-?[\d.]+)% cheaper per request than HEAD, the floor (-?[\d.]+)%"
    )
    summary = re.search(pattern, run.stdout, re.MULTILINE)
    assert summary, run.stdout
    ours, theirs, floor, ours_cheaper, floor_cheaper = map(float, summary.groups())
    assert ours_cheaper == pytest.approx((1 - ours / theirs) * 100, abs=0.1)  # from the printed medians
    assert floor_cheaper == pytest.approx((1 - floor / theirs) * 100, abs=0.1)
    worktrees = subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    assert "fashion-softmax-against-" not in worktrees  # the temporary checkout is removed
