"""wrk (Debian's package) posting one body for a fixed time: totals, errors and latency percentiles.

result = post_for(url, png_path, "image/png", connections=64, seconds=60)
result["requests"], result["errors"], result["p99_ms"]
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def post_for(url: str, body_file: Path, content_type: str, connections: int, seconds: float) -> dict:
    """One wrk run; `requests` counts completed answers (any status), `errors` socket errors plus non-2xx."""
    script = body_file.with_suffix(".lua")
    script.write_text(
        f'local f = io.open("{body_file}", "rb"); local body = f:read("*all"); f:close()\n'
        f'wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "{content_type}"\n'
    )
    duration = max(1, round(seconds))
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, timeout=duration + 60, check=True,
    ).stdout  # fmt: skip
    socket_errors = {
        kind: int(count) for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)
    }  # fmt: skip
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "socket_errors": socket_errors,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": sum(socket_errors.values()) + (int(non_2xx.group(1)) if non_2xx else 0),
        "p50_ms": latency(output, "50%"),
        "p99_ms": latency(output, "99%"),
    }


def latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
