"""The CI rule for what a test needs but a user's machine may lack (the real dataset, wrk, a browser)."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason: str):
    """Optional things may skip on a user's machine; under CI=true they must run or fail."""
    if IN_CI:
        pytest.fail(f"required under CI: {reason}")
    pytest.skip(reason)
