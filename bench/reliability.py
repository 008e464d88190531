"""Reliability of the production server (2 workers): memory, load, fuzzing, slow clients, a killed worker.

    python -m bench.reliability [--time-scale 1] [--model-dir artifacts] [--data-dir data]   (make reliability)

Starts the server as `make serve` does (harness/server.py) on a free 127.0.0.1 port around the trained
model, with a token file as deployed (every request below carries the token), and runs the scenarios in this
order on it (the worker kill last: it changes the workers). Each scenario has a time budget (BUDGETS_S, times
--time-scale) and fits its work into it: the memory readings come at their counts of requests or at the end of
the budget, the other scenarios run for their budget, and each reports what it reached (a count short of its
target is a missed row, not a longer run). Writes
bench/results/reliability.json, prints one row per figure (value, target, met?), exits 1 if any target is
missed, and stops the server in every case. A scenario that fails is reported in its rows, not as a traceback.
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
import time
from pathlib import Path

from bench import auth_fuzz, fuzz
from harness import ROOT, wrk
from harness.images import png
from harness.probes import slow_clients_while_timing, worker_killed_under_load
from harness.server import ProductionServer, rss_kib, server_command
from serving.metrics import FLUSH_EVERY_S
from training.data import load_fashion_mnist

PREDICT = "/predict"
CONNECTIONS = 64  # of the load, memory and worker-kill scenarios
BUDGETS_S = {  # seconds per scenario at --time-scale 1
    "memory": 150,  # wrk until 10,000 requests, a reading, then until 100,000, another
    "load": 60,  # wrk for this long
    "fuzzing": 210,  # schemathesis for this long (bench/fuzz.py); 10,000 requests or more
    "authorization_fuzzing": 60,  # malformed Authorization headers (bench/auth_fuzz.py) until 5,000 or this long
    "slow_clients": 30,  # 50 trickling clients while ordinary requests are timed
    "worker_killed": 60,  # wrk for this long, a worker killed at a third of it
}
MEMORY_MARKS = (10_000, 100_000)  # /predict requests before the first and the second RSS reading


def rss_after(server: ProductionServer, body: Path, mark: int, deadline: float) -> dict:
    """Each worker's RSS once the server has counted `mark` /predict requests, or at the deadline: wrk in slices
    up to the mark, then a reading.

    The first slice (1 s) measures the rate; the next ones aim at the mark, overshooting by about a second's
    worth at most, and never past the deadline.
    """
    rate = None
    while (counted := server.requests_counted(PREDICT)) < mark and (left := deadline - time.monotonic()) >= 1:
        slice_s = 1 if rate is None else min(10, left, max(1, (mark - counted) / rate))
        result = wrk.post_for(f"{server.url}{PREDICT}", body, "image/png", CONNECTIONS, slice_s, server.auth)
        rate = max(100.0, result["requests_per_second"])
    return {"requests": counted, "rss_kib": {pid: rss_kib(pid) for pid in server.worker_pids()}}


def growth(first: dict, second: dict) -> dict:
    """Growth of each worker's RSS between two readings (the same workers, or the figure is void)."""
    pids = sorted(first["rss_kib"])
    by_worker = {pid: second["rss_kib"].get(pid, math.inf) / first["rss_kib"][pid] - 1 for pid in pids}
    return {
        "same_workers": pids == sorted(second["rss_kib"]),
        "first_reading": first,
        "second_reading": second,
        "growth": by_worker,
        "max_growth": max(abs(value) for value in by_worker.values()),
    }


def memory(server: ProductionServer, body: Path, budget_s: float) -> dict:
    """RSS at 10,000 and at 100,000 requests (or where the budget ended); the first mark gets half of it."""
    started = time.monotonic()
    first = rss_after(server, body, MEMORY_MARKS[0], started + budget_s / 2)
    return growth(first, rss_after(server, body, MEMORY_MARKS[1], started + budget_s))


def load(server: ProductionServer, body: Path, budget_s: float) -> dict:
    before = server.requests_counted(PREDICT)
    result = wrk.post_for(f"{server.url}{PREDICT}", body, "image/png", CONNECTIONS, budget_s, server.auth)
    result["server_counted"] = settled_count(server) - before
    return result | {"connections": CONNECTIONS, "seconds": max(1, round(budget_s))}


def worker_killed(server: ProductionServer, body: Path, budget_s: float) -> dict:
    """wrk for the budget; one worker gets SIGKILL at a third of it; then the server must be whole again.

    What fails is what the killed worker had in flight (about connections / workers), so the failed fraction
    is that over every request of the run: the longer the run, the smaller it is.
    """
    before = server.requests_counted(PREDICT)
    found = worker_killed_under_load(server, body, "image/png", CONNECTIONS, budget_s, kill_after_s=budget_s / 3)
    counted = settled_count(server) - before
    outcome = found["wrk"]
    failed, completed = outcome["errors"], outcome["requests"]
    # the killed worker's counts not yet written to its sample file: at most what the server answers in a few
    # FLUSH_EVERY_S (serving/metrics.py: a worker writes what it gathered that often, and as it stops gracefully)
    unwritten = math.ceil(completed / max(1, round(budget_s)) * 3 * FLUSH_EVERY_S)
    return found | {
        "connections": CONNECTIONS,
        "seconds": max(1, round(budget_s)),
        "failed_fraction": failed / max(1, completed + sum(outcome["socket_errors"].values())),
        "server_counted": counted,
        # answered by the server but not seen by wrk: requests cut off by the kill (wrk's failures) and the
        # ones in flight when wrk stopped at its deadline (at most one per connection)
        "counted_minus_completed": counted - completed,
        "unwritten_at_most": unwritten,
        "adds_up": completed - unwritten <= counted <= completed + failed + CONNECTIONS,
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


Row = tuple[str, object, str, bool]  # (figure, value, target, met)


def memory_rows(m: dict, after: dict) -> list[Row]:
    first, second = m["first_reading"]["requests"], m["second_reading"]["requests"]
    shown_after = after["second_reading"]["requests"]
    return [
        ("memory: requests at the first reading", first, f">= {MEMORY_MARKS[0]}", first >= MEMORY_MARKS[0]),
        ("memory: requests at the second reading", second, f">= {MEMORY_MARKS[1]}", second >= MEMORY_MARKS[1]),
        (f"memory: max |RSS at {second} / RSS at {first} - 1|", f"{m['max_growth']:.2%}", "<= 5%",
         m["max_growth"] <= 0.05),
        ("memory: same workers throughout", m["same_workers"], "yes", m["same_workers"]),
        (f"memory: |RSS after the load ({shown_after}) / RSS at {first} - 1|", f"{after['max_growth']:.2%}",
         "(reported)", True),
    ]  # fmt: skip


def load_rows(lo: dict) -> list[Row]:
    name = f"load {lo['connections']} conn {lo['seconds']} s"
    return [
        (f"{name}: errors", lo["errors"], "0", lo["errors"] == 0),
        (f"{name}: requests/s", round(lo["requests_per_second"]), "(reported)", True),
        (f"{name}: p50 ms", lo["p50_ms"], "(reported)", True),
        (f"{name}: p99 ms", lo["p99_ms"], "(reported)", True),
    ]


def fuzzing_rows(fz: dict) -> list[Row]:
    return [
        ("fuzz: requests sent (server count)", fz["requests"], f">= {fz['target']}", fz["requests"] >= fz["target"]),
        ("fuzz: 5xx answers (server count)", fz["server_5xx"], "0", fz["server_5xx"] == 0),
        ("fuzz: check failures (5xx, breaks the document)", fz["failures"], "0", fz["failures"] == 0),
        ("fuzz: schemathesis runs that reported", f"{fz['runs_reported']}/{fz['runs']}", "all",
         fz["runs"] > 0 and fz["runs_reported"] == fz["runs"]),
        ("fuzz: worker deaths", fz["worker_deaths"], "0", fz["worker_deaths"] == 0),
    ]  # fmt: skip


def authorization_fuzzing_rows(az: dict) -> list[Row]:
    return [
        ("auth fuzz: malformed Authorization headers sent", az["requests"], f">= {az['target']}",
         az["requests"] >= az["target"]),
        ("auth fuzz: protected answers that were not 401", az["not_401"], "0", az["not_401"] == 0),
        ("auth fuzz: open routes that did not answer 200", az["open_not_200"], "0", az["open_not_200"] == 0),
        ("auth fuzz: 5xx answers (server count)", az["server_5xx"], "0", az["server_5xx"] == 0),
        (f"auth fuzz: right-token controls ({az['controls']}) not answered 200", az["controls_not_200"], "0",
         az["controls"] > 0 and az["controls_not_200"] == 0),
    ]  # fmt: skip


def slow_client_rows(sl: dict) -> list[Row]:
    return [
        ("slow clients: timed requests answered", f"{sl['answered']}/{sl['timed_requests']}", "all",
         sl["timed_requests"] > 0 and sl["answered"] == sl["timed_requests"]),
        ("slow clients: p99 ms", sl["p99_ms"], "< 50", sl["p99_ms"] < 50),
    ]  # fmt: skip


def kill_rows(k: dict) -> list[Row]:
    return [
        ("kill: failed fraction", f"{k['failed_fraction']:.4%}", "< 0.1%", k["failed_fraction"] < 0.001),
        ("kill: worker replaced, 2 workers", k["replaced"], "yes", k["replaced"]),
        (
            "kill: /metrics count - wrk completed",
            k["counted_minus_completed"],
            f"-{k['unwritten_at_most']} .. failed+conns",
            k["adds_up"],
        ),
    ]


def targets(results: dict) -> list[Row]:
    """Every figure's row; a scenario that failed or never ran gets one row that says so, its target missed."""
    rows: list[Row] = []
    if "server" in results:
        rows.append(("server: started with 2 workers", results["server"]["error"], "yes", False))
    parts = (
        (("memory", "memory_after_load"), memory_rows),
        (("load",), load_rows),
        (("fuzzing",), fuzzing_rows),
        (("authorization_fuzzing",), authorization_fuzzing_rows),
        (("slow_clients",), slow_client_rows),
        (("worker_killed",), kill_rows),
    )
    for names, make in parts:
        missing = [name for name in names if "error" in results.get(name, {"error": "did not run"})]
        if missing:
            rows += [(f"{name}: not measured", results.get(name, {}).get("error", "did not run"), "measured", False)
                     for name in missing]  # fmt: skip
        else:
            rows += make(*(results[name] for name in names))
    for name, result in results.items():
        if result.get("server_whole_after") is False:  # within 60 s of the scenario's end
            rows.append((f"{name}: server whole again after it", False, "yes", False))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplies every scenario's time budget "
                        "(0.5: half the time; counts of requests may then fall short)")  # fmt: skip
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--report", type=Path, default=ROOT / "bench/results/reliability.json")
    args = parser.parse_args()
    if args.time_scale <= 0:
        sys.exit("reliability: --time-scale must be a positive number of times (0.5: half the time)")
    for tool in ("wrk", "schemathesis"):
        if not shutil.which(tool) and not Path(sys.executable).with_name(tool).exists():
            sys.exit(f"reliability: {tool} not found (wrk: Debian's package; schemathesis: the dev extra)")
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"reliability: no model in {args.model_dir}; run `make train-export` first")

    _, test = load_fashion_mnist(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="reliability-"))
    body = work / "single.png"
    body.write_bytes(png(test.images[0].numpy()))  # (28, 28) uint8, a real test image
    budget = {name: seconds * args.time_scale for name, seconds in BUDGETS_S.items()}
    results: dict = {}
    began = time.monotonic()
    try:
        with ProductionServer(args.model_dir, work / "server.log", with_token=True) as server:  # as deployed
            for name, scenario in (
                ("memory", lambda: memory(server, body, budget["memory"])),
                ("load", lambda: load(server, body, budget["load"])),
                # one more reading after the load scenario, reported beside the first one
                ("memory_after_load",
                 lambda: growth(results["memory"]["first_reading"], rss_after(server, body, 0, time.monotonic()))),
                ("fuzzing", lambda: fuzz.run(server, work, budget["fuzzing"])),
                ("authorization_fuzzing", lambda: auth_fuzz.run(server, budget["authorization_fuzzing"])),
                ("slow_clients", lambda: slow_clients_while_timing(server.url, body.read_bytes(), 50,
                                                                   budget["slow_clients"], byte_every_s=2.0,
                                                                   headers=server.auth)),
                ("worker_killed", lambda: worker_killed(server, body, budget["worker_killed"])),
            ):  # fmt: skip
                started = time.monotonic()
                print(f"reliability: {name} ...", flush=True)
                try:
                    results[name] = scenario()
                except Exception as error:  # reported as a missed target, and the next scenarios still run
                    results[name] = {"error": f"{type(error).__name__}: {error}"[:300]}
                results[name]["wall_s"] = round(time.monotonic() - started, 1)
                try:  # a scenario that lost a worker leaves a whole server to the next
                    server.wait_healthy(60)
                except RuntimeError:
                    results[name]["server_whole_after"] = False
    except RuntimeError as error:  # the server did not start (or was not whole) in time
        results["server"] = {"error": str(error).splitlines()[0]}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = targets(results)
    report = {
        "server": " ".join(Path(part).name for part in server_command()),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "time_scale": args.time_scale,
        "budgets_s": budget,
        "wall_s": round(time.monotonic() - began, 1),
        "targets": [{"figure": f, "value": v, "target": t, "met": ok} for f, v, t, ok in rows],
        "scenarios": results,
    }
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(finite(report), indent=2) + "\n")
    print(f"\n{'figure':56}{'value':>16}  {'target':24}met")
    for figure, value, target, met in rows:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{figure:56}{shown:>16}  {target:24}{'yes' if met else 'NO'}")
    missed = [figure for figure, *_, met in rows if not met]
    print(f"{report['wall_s']:.0f} s at time scale {args.time_scale:g}; report: {args.report}; "
          + (f"{len(missed)} target(s) missed" if missed else "every target met"))  # fmt: skip
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
