"""What the tests, the benchmarks (bench/) and the compose checks (docker/check_*.py) share: starting and
watching the production server, load, probes, image fixtures, published models, the CI skip rule.

Not installed: importable from the repository root, as `tests` is (pytest, `python -m bench...`,
`PYTHONPATH=. python docker/check_stack.py`). Nothing here imports `tests` or `bench`.
"""

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (standard library only: the peers' scripts use it too)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
