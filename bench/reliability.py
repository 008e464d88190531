"""Reliability of the production server (2 workers): memory, load, fuzzing, slow clients, a killed worker.

    python -m bench.reliability [--model-dir artifacts] [--data-dir data]    (make reliability)

Starts the server as `make serve` does (bench/production_server.py) on a free 127.0.0.1 port around
the trained model, with a token file as deployed (every request below carries the token), runs the
scenarios in this order on it (the worker kill last: it changes the workers), writes
bench/results/reliability.json, prints one row per figure (value, target, met?), exits 1 if any target
is missed, and stops the server in every case. About 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import auth_fuzz, fuzz, wrk
from bench.bench_serve import png
from bench.production_server import ProductionServer, rss_kib, server_command
from bench.slow_clients import trickle_while_timing
from training.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
PREDICT = "/predict"


def rss_after(server: ProductionServer, body: Path, mark: int, connections: int = 64, limit_s: float = 240) -> dict:
    """Each worker's RSS once the server has counted `mark` /predict requests: wrk slices up to it, then a reading.

    The first slice (1 s) measures the rate; the next ones aim at the mark, overshooting by about a second's
    worth at most. 64 connections, as in the load scenario.
    """
    rate, deadline = None, time.monotonic() + limit_s
    while (counted := server.requests_counted(PREDICT)) < mark and time.monotonic() < deadline:
        slice_s = 1 if rate is None else min(10, max(1, (mark - counted) / rate))
        result = wrk.post_for(f"{server.url}{PREDICT}", body, "image/png", connections, slice_s, server.auth)
        rate = max(100.0, result["requests_per_second"])
    return {"requests": counted, "rss_kib": {pid: rss_kib(pid) for pid in server.worker_pids()}}


def memory(first: dict, second: dict) -> dict:
    """Growth of each worker's RSS between two readings (the same workers, or the figure is void)."""
    pids = sorted(first["rss_kib"])
    growth = {pid: second["rss_kib"].get(pid, math.inf) / first["rss_kib"][pid] - 1 for pid in pids}
    return {
        "same_workers": pids == sorted(second["rss_kib"]),
        "first_reading": first,
        "second_reading": second,
        "growth": growth,
        "max_growth": max(abs(value) for value in growth.values()),
    }


def load(server: ProductionServer, body: Path, connections: int = 64, seconds: int = 60) -> dict:
    before = server.requests_counted(PREDICT)
    result = wrk.post_for(f"{server.url}{PREDICT}", body, "image/png", connections, seconds, server.auth)
    result["server_counted"] = settled_count(server) - before
    return result | {"connections": connections, "seconds": seconds}


def worker_killed(server: ProductionServer, body: Path, connections: int = 64, seconds: int = 60) -> dict:
    """wrk for `seconds`; one worker gets SIGKILL at a third of it; then the server must be whole again.

    What fails is what the killed worker had in flight (about connections / workers, measured 30-40), so the
    failed fraction is that over all the requests of the run: 60 s keep it clear of 0.1% on a slow machine
    (30 s: 38 of 50,723 failed, 0.075%, in one CI run; 60 s: 31 of 134,404, 0.023%).
    """
    pids_before = server.worker_pids()
    before = server.requests_counted(PREDICT)
    outcome: dict = {}
    runner = threading.Thread(
        target=lambda: outcome.update(
            wrk.post_for(f"{server.url}{PREDICT}", body, "image/png", connections, seconds, server.auth)
        )
    )
    runner.start()
    time.sleep(seconds / 3)
    victim = pids_before[0]
    os.kill(victim, 9)
    runner.join(timeout=seconds + 90)
    replaced = True
    try:
        server.wait_healthy(30, gone=victim)
    except RuntimeError:
        replaced = False
    pids_after = server.worker_pids()
    counted = settled_count(server) - before
    failed = outcome.get("errors", math.inf)
    completed = outcome.get("requests", 0)
    return {
        "connections": connections,
        "seconds": seconds,
        "killed": victim,
        "workers_before": pids_before,
        "workers_after": pids_after,
        "replaced": replaced and victim not in pids_after and len(pids_after) == server.workers,
        "wrk": outcome,
        "failed_fraction": failed / max(1, completed + sum(outcome.get("socket_errors", {}).values())),
        "server_counted": counted,
        # answered by the server but not seen by wrk: requests cut off by the kill (wrk's failures) and the
        # ones in flight when wrk stopped at its deadline (at most one per connection)
        "counted_minus_completed": counted - completed,
        "adds_up": completed <= counted <= completed + failed + connections,
    }


def settled_count(server: ProductionServer, seconds: float = 10) -> int:
    """The /predict count once it stops moving: requests still in the server when the client stopped."""
    deadline, last = time.monotonic() + seconds, -1
    while time.monotonic() < deadline:
        now = server.requests_counted(PREDICT)
        if now == last:
            return now
        last = now
        time.sleep(0.5)
    return last


def finite(value):
    """JSON has no infinity: a figure that never came (no answer) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def targets(results: dict) -> list[tuple[str, float | str, str, bool]]:
    """(figure, value, target, met) rows."""
    m, lo, fz, sl, k = (results[name] for name in ("memory", "load", "fuzzing", "slow_clients", "worker_killed"))
    az = results["authorization_fuzzing"]
    same_workers, after = m["same_workers"], results["memory_after_load"]
    lo_name = f"load {lo['connections']} conn {lo['seconds']} s"
    return [
        ("fuzz: requests sent (server count)", fz["requests"], ">= 10000", fz["requests"] >= 10_000),
        ("fuzz: 5xx answers (server count)", fz["server_5xx"], "0", fz["server_5xx"] == 0),
        ("fuzz: check failures (5xx, breaks the document)", fz["failures"], "0", fz["failures"] == 0),
        ("fuzz: worker deaths", fz["worker_deaths"], "0", fz["worker_deaths"] == 0),
        ("auth fuzz: malformed Authorization headers sent", az["requests"], f">= {az['planned']}",
         az["requests"] >= az["planned"]),
        ("auth fuzz: protected answers that were not 401", az["not_401"], "0", az["not_401"] == 0),
        ("auth fuzz: open routes that did not answer 200", az["open_not_200"], "0", az["open_not_200"] == 0),
        ("auth fuzz: 5xx answers (server count)", az["server_5xx"], "0", az["server_5xx"] == 0),
        (f"auth fuzz: right-token controls ({az['controls']}) not answered 200", az["controls_not_200"], "0",
         az["controls"] > 0 and az["controls_not_200"] == 0),
        (f"{lo_name}: errors", lo["errors"], "0", lo["errors"] == 0),
        (f"{lo_name}: requests/s", round(lo["requests_per_second"]), "(reported)", True),
        (f"{lo_name}: p50 ms", lo["p50_ms"], "(reported)", True),
        (f"{lo_name}: p99 ms", lo["p99_ms"], "(reported)", True),
        ("memory: max |RSS at 100k / RSS at 10k - 1|", f"{m['max_growth']:.2%}", "<= 5%", m["max_growth"] <= 0.05),
        ("memory: same workers throughout", same_workers, "yes", same_workers),
        (f"memory: |RSS after the load ({after['second_reading']['requests']} requests) / RSS at 10k - 1|",
         f"{after['max_growth']:.2%}", "(reported)", True),
        ("kill: failed fraction", f"{k['failed_fraction']:.4%}", "< 0.1%", k["failed_fraction"] < 0.001),
        ("kill: worker replaced, 2 workers", k["replaced"], "yes", k["replaced"]),
        ("kill: /metrics count - wrk completed", k["counted_minus_completed"], "in [0, failed + conns]", k["adds_up"]),
        ("slow clients: timed requests answered", f"{sl['answered']}/{sl['timed_requests']}", "all",
         sl["timed_requests"] > 0 and sl["answered"] == sl["timed_requests"]),
        ("slow clients: p99 ms", sl["p99_ms"], "< 50", sl["p99_ms"] < 50),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--report", type=Path, default=ROOT / "bench/results/reliability.json")
    parser.add_argument("--quick", action="store_true", help="a tenth of the fuzzing and of the durations (develop)")
    args = parser.parse_args()
    for tool in ("wrk", "schemathesis"):
        if not shutil.which(tool) and not Path(sys.executable).with_name(tool).exists():
            sys.exit(f"reliability: {tool} not found (wrk: Debian's package; schemathesis: the dev extra)")
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"reliability: no model in {args.model_dir}; run `make train-export` first")

    _, test = load_fashion_mnist(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="reliability-"))
    body = work / "single.png"
    body.write_bytes(png(test.images[0].numpy()))  # (28, 28) uint8, a real test image
    results: dict = {}
    try:
        with ProductionServer(args.model_dir, work / "server.log", with_token=True) as server:  # as deployed
            q = 0.1 if args.quick else 1.0  # --quick: a tenth of everything
            marks = round(10_000 * q), round(100_000 * q)
            for name, run in (
                # RSS readings after 10,000 and 100,000 requests; one more after the load scenario, reported
                ("memory_first_reading", lambda: rss_after(server, body, marks[0])),
                ("memory", lambda: memory(results["memory_first_reading"], rss_after(server, body, marks[1]))),
                ("load", lambda: load(server, body, seconds=round(60 * q))),
                ("memory_after_load", lambda: memory(results["memory_first_reading"], rss_after(server, body, 0))),
                ("fuzzing", lambda: fuzz.run(server, work, q)),
                ("authorization_fuzzing", lambda: auth_fuzz.run(server, round(5000 * q))),
                (
                    "slow_clients",
                    lambda: trickle_while_timing(server.url, body.read_bytes(), 50, 30 * q, 2.0, server.auth),
                ),
                ("worker_killed", lambda: worker_killed(server, body, seconds=round(60 * q))),
            ):
                started = time.monotonic()
                print(f"reliability: {name} ...", flush=True)
                results[name] = run() | {"wall_s": round(time.monotonic() - started, 1)}
                server.wait_healthy(60)  # a scenario that lost a worker leaves a whole server to the next
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = targets(results)
    report = {
        "server": " ".join(Path(part).name for part in server_command()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "targets": [{"figure": f, "value": v, "target": t, "met": ok} for f, v, t, ok in rows],
        "scenarios": results,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(finite(report), indent=2) + "\n")
    print(f"\n{'figure':50}{'value':>16}  {'target':24}met")
    for figure, value, target, met in rows:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{figure:50}{shown:>16}  {target:24}{'yes' if met else 'NO'}")
    missed = [figure for figure, *_, met in rows if not met]
    print(f"report: {args.report}; " + (f"{len(missed)} target(s) missed" if missed else "every target met"))
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
