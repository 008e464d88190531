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


class WrkFailed(RuntimeError):
    """wrk ended without its summary (it could not start, or was cut off)."""


def command(
    url: str,
    body_file: Path,
    content_type: str,
    connections: int,
    seconds: float,
    headers=None,
    threads: int = 1,
    rate=None,
) -> list:
    """The wrk command line posting body_file from `threads` client threads; its Lua script is written beside the
    body. rate: requests/s in all, paced (each connection waits connections/rate s between requests), instead of
    as many as the server answers."""
    script = Path(body_file).with_suffix(".lua")
    extra = "".join(f'wrk.headers["{name}"] = "{value}"\n' for name, value in (headers or {}).items())
    if rate is not None:
        extra += f"function delay() return {1000 * connections / rate:.3f} end\n"  # milliseconds
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
    rate=None,
) -> dict:
    """One wrk run (see `parse`); per_request: images in each body, for images_per_second; rate: see `command`."""
    argv = command(url, body_file, content_type, connections, seconds, headers, threads, rate)
    try:
        finished = subprocess.run(argv, capture_output=True, text=True, timeout=max(1, seconds) + 60)
    except subprocess.TimeoutExpired as error:
        raise WrkFailed(f"wrk did not finish {seconds:g} s of load within a minute more") from error
    return parse(finished.stdout + finished.stderr, per_request)


def parse(output: str, per_request: int = 1) -> dict:
    """wrk's report -> `requests` completed (any status), `errors` (socket errors plus non-2xx), p50/p99 in ms."""
    completed = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not (completed and rate):
        raise WrkFailed(f"wrk gave no summary: {output.strip()[-300:]!r}")
    socket_errors = {kind: int(count) for kind, count in re.findall(r"(connect|read|write|timeout) (\d+)", output)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    rps = float(rate.group(1))
    return {
        "requests": int(completed.group(1)),
        "requests_per_second": rps,
        "images_per_second": rps * per_request,
        "socket_errors": socket_errors,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "errors": sum(socket_errors.values()) + (int(non_2xx.group(1)) if non_2xx else 0),
        "p50_ms": latency(output, "50%"),
        "p99_ms": latency(output, "99%"),
    }


def latency(output: str, percentile: str) -> float:
    found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    if not found:
        raise WrkFailed(f"wrk gave no {percentile} latency (no request completed?)")
    value, unit = found.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
