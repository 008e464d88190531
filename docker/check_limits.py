"""What TLS costs at the proxy, and its limits per client, measured on the running compose stack (make compose-test).

    python docker/check_limits.py https://127.0.0.1:PORT PLAIN_PORT TOKENS_FILE    (harness/stack_client.py's variables)

1. Requests/s of single-PNG /predict through the proxy with TLS and through its plain listener (published for
   this run only), wrk with keep-alive, interleaved, medians (target: TLS keeps >= 80%).
2. The proxy restarted with a small rate per client (RATE/s, burst BURST). Client B, within its limit, timed
   alone; then client A (wrk, paced) offers 10x the rate while B goes on: A's excess gets 429 (JSON,
   Retry-After), answered how fast by nginx (its access log; target < 5 ms); B is never refused, and its p99
   is compared with its p99 alone (target: within 20%).
Correctness is checked (who gets 429, and in which form); timings are printed with their targets, as a
benchmark's figures: on a shared machine its noise decides them more than the proxy does.
Exits non-zero on the first failure.
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from harness import stack_client, wrk
from harness.compose import check, compose, no_token_in_logs
from harness.images import GARMENTS, png
from serving import tokens

RATE, BURST, TIMES_OVER = 20, 20, 10  # the limit of the test (requests/s, burst) and client A's offer: 10x it
B_RATE = 15  # client B, within the same limit
SECONDS = 15  # each phase


def tls_against_plain(url: str, plain_port: int, rounds: int = 3, seconds: int = 5) -> None:
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder) / "garment.png"
        body.write_bytes(png(GARMENTS[3]))
        plain = f"http://127.0.0.1:{plain_port}/predict"
        rates = {"tls": [], "plain": []}
        for _ in range(rounds):
            for name, target in (("plain", plain), ("tls", f"{url}/predict")):
                result = wrk.post_for(target, body, "image/png", 16, seconds, stack_client.auth())
                check(result["errors"] == 0, f"wrk {name}: {result['requests']} requests, no errors")
                rates[name].append(result["requests_per_second"])
    tls, plain_rate = statistics.median(rates["tls"]), statistics.median(rates["plain"])
    ratio = tls / plain_rate
    print(f"compose-test: figure: /predict through the proxy, 16 keep-alive connections, medians of {rounds} x "
          f"{seconds} s: TLS {tls:.0f} requests/s, plain HTTP {plain_rate:.0f}: TLS keeps {ratio:.0%} "
          f"(target >= 80%: {'met' if ratio >= 0.8 else 'NOT met'})", flush=True)  # fmt: skip


@dataclass
class Run:
    """What a paced client saw: (status, seconds) of each request."""

    answers: list[tuple[int, float]]

    def latencies_ms(self, status: int) -> list[float]:
        return sorted(seconds * 1000 for answer_status, seconds, *_ in self.answers if answer_status == status)


def paced(url: str, token: str, rate: float, seconds: float, body: bytes, connections: int = 1) -> Run:
    """`rate` requests/s on a schedule for `seconds`, over `connections` keep-alive connections (several: a request
    is sent when due, not when the one before is answered)."""
    start, lock, next_slot, answers = time.monotonic() + 0.2, threading.Lock(), [0], []

    def sender():
        client = stack_client.session(token)
        while True:
            with lock:
                slot = next_slot[0]
                next_slot[0] += 1
            due = start + slot / rate
            if due > start + seconds:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            began = time.perf_counter()
            answer = client.post(url, data=body, headers={"Content-Type": "image/png"}, timeout=10)
            answers.append((answer.status_code, time.perf_counter() - began))

    senders = [threading.Thread(target=sender, daemon=True) for _ in range(connections)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join(timeout=seconds + 30)
    return Run(answers)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def proxy_times_ms(status: int) -> list[float]:
    """nginx's own time ($request_time) for each answer with `status` in the proxy's access log."""
    times = re.findall(rf'" {status} \d+ ([\d.]+) upstream=', compose("logs", "--no-color", "proxy"))
    return sorted(float(seconds) * 1000 for seconds in times)


def limits(url: str, token_file: Path) -> list[str]:
    """The tokens this check made."""
    a, b = (tokens.add(token_file, name) for name in ("compose-test-a", "compose-test-b"))
    no_token_in_logs([a, b])  # before the proxy (and its log) is replaced
    compose("up", "-d", "--wait", "--no-deps", "proxy", env={"API_RATE_LIMIT": str(RATE), "API_RATE_BURST": str(BURST)})
    check(f"per client {RATE} requests/s (burst {BURST})" in compose("logs", "proxy"),
          f"the proxy restarted with a limit of {RATE} requests/s per client, burst {BURST}")  # fmt: skip
    body, predict = png(GARMENTS[3]), f"{url}/predict"
    deadline = time.monotonic() + 15
    while stack_client.session(a).post(predict, data=body, timeout=10).status_code != 200:  # read by every worker
        check(time.monotonic() < deadline, "client A's new token is accepted")
        time.sleep(0.5)
    time.sleep(1.5)  # A's bucket refills

    alone = paced(predict, b, B_RATE, SECONDS, body)
    # A: wrk, paced (a Python client would take B's interpreter lock, and far more CPU)
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(max_workers=1) as pool:
        (Path(folder) / "garment.png").write_bytes(body)
        flooding = pool.submit(
            wrk.post_for, predict, Path(folder) / "garment.png", "image/png", 8, SECONDS, stack_client.auth(a),
            rate=RATE * TIMES_OVER * 1.1,  # wrk waits for each answer before its pause: aim a little higher
        )  # fmt: skip
        beside = paced(predict, b, B_RATE, SECONDS, body)
        flood = flooding.result(timeout=SECONDS + 60)
    refused = proxy_times_ms(429)
    served = flood["requests"] - flood["non_2xx"]
    offered = flood["requests_per_second"]
    check(
        offered >= 0.9 * RATE * TIMES_OVER,
        f"client A offered {offered:.0f} requests/s, {offered / RATE:.1f}x the limit",
    )
    allowed = RATE * SECONDS + BURST
    in_flight = len(refused) - flood["non_2xx"]  # answered by nginx after wrk stopped counting: one per connection
    check(
        0 <= in_flight <= 8 and served <= allowed + RATE and not flood["socket_errors"],
        f"client A: {served} answered (the limit allows {allowed} in {SECONDS} s), {len(refused)} got 429",
    )
    over = [stack_client.session(a).post(predict, data=body, timeout=10) for _ in range(BURST + 5)]  # still over
    forms = {(answer.headers.get("Retry-After"), answer.json()["error"]["code"]) for answer in over
             if answer.status_code == 429}  # fmt: skip
    check(forms == {("1", "too_many_requests")}, f"a 429 is the JSON error with Retry-After: 1 ({forms})")
    b_statuses = {status for status, *_ in alone.answers + beside.answers}
    check(b_statuses == {200}, f"client B, within its limit, is never refused: {sorted(b_statuses)} "
                               f"({len(alone.answers)} requests alone, {len(beside.answers)} beside A)")  # fmt: skip

    p99 = percentile(refused, 0.99)
    print(f"compose-test: figure: client A's {len(refused)} 429s, nginx's time: p50 {percentile(refused, 0.5):.1f} ms, "
          f"p99 {p99:.1f} ms (target < 5 ms: {'met' if p99 < 5 else 'NOT met'}); all of A's answers at the client "
          f"(wrk): p50 {flood['p50_ms']:.1f} ms, p99 {flood['p99_ms']:.1f} ms", flush=True)  # fmt: skip
    before, during = alone.latencies_ms(200), beside.latencies_ms(200)
    change = percentile(during, 0.99) / percentile(before, 0.99) - 1
    print(f"compose-test: figure: client B ({B_RATE} requests/s, within its limit) p50/p95/p99 ms alone "
          f"{percentile(before, 0.5):.1f}/{percentile(before, 0.95):.1f}/{percentile(before, 0.99):.1f}, beside A at "
          f"{offered / RATE:.0f}x its limit {percentile(during, 0.5):.1f}/{percentile(during, 0.95):.1f}/"
          f"{percentile(during, 0.99):.1f}: p99 {change:+.0%} (target within 20%: "
          f"{'met' if abs(change) <= 0.2 else 'NOT met'})", flush=True)  # fmt: skip
    return [a, b]


def main(url: str, plain_port: str, token_file: str) -> None:
    tls_against_plain(url, int(plain_port))
    no_token_in_logs(limits(url, Path(token_file)))


if __name__ == "__main__":
    main(*sys.argv[1:4])
