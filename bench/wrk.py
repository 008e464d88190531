"""wrk (Debian's package) posting one body for a fixed time: totals, errors and latency percentiles.

    result = post_for(url, png_path, "image/png", connections=64, seconds=60)
    result["requests"], result["errors"], result["p99_ms"]

`command` and `parse` are the two halves, for callers that run wrk themselves (a probe that kills a worker
while it runs).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def command(
    url: str, body_file: Path, content_type: str, connections: int, seconds: float, headers=None, threads: int = 1
) -> list:
    """The wrk command line posting body_file from `threads` client threads; its Lua script is written beside the
    body."""
    script = body_file.with_suffix(".lua")
    extra = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
    script.write_text(
        f'local f = io.open("{body_file}", "rb"); local body = f:read("*all"); f:close()\n'
        f'wrk.method = "POST"; wrk.body = body; wrk.headers["Content-Type"] = "{content_type}"\n{extra}'
    )
    duration = max(1, round(seconds))
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
    ]


def post_for(
    url: str,
    body_file: Path,
    content_type: str,
    connections: int,
    seconds: float,
    headers=None,
    per_request: int = 1,
    threads: int = 1,
) -> dict:
    """One wrk run (see `parse`); per_request: images in each body, for images_per_second."""
    argv = command(url, body_file, content_type, connections, seconds, headers, threads)
    output = subprocess.run(argv, capture_output=True, text=True, timeout=max(1, seconds) + 60, check=True).stdout
    return parse(output, per_request)


def parse(output: str, per_request: int = 1) -> dict:
    """wrk's report -> `requests` completed (any status), `errors` (socket errors plus non-2xx), p50/p99 in ms."""
    socket_errors = {kind: int(count) for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "requests_per_second": rps,
        "images_per_second": rps * per_request,
        "socket_errors": socket_errors,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": sum(socket_errors.values()) + (int(non_2xx.group(1)) if non_2xx else 0),
        "p50_ms": latency(output, "50%"),
        "p99_ms": latency(output, "99%"),
    }


def latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
