"""Fuzzing the live server with schemathesis, driven by the OpenAPI document it serves at /openapi.json, within
a time budget.

    result = run(server, work_dir, budget_s=150)   # result["requests"], result["failures"], result["server_5xx"]

Every operation, in schemathesis' "all" mode: valid requests and requests that break the schema (wrong types,
missing or extra fields, bodies that are not what the content type says). The GET and the POST operations run
as two schemathesis processes side by side, in rounds: the first with the document's examples and the coverage
phase and a few generated cases, the next ones generated cases only, each with a new seed. The size of a round
(cases per operation) comes from the rates the server counted in the round before, so that it ends within the
budget; rounds stop once `target` requests were sent or the budget is spent. A process still running at the end
of the budget is stopped and its round has no report: that is counted, never read. The requests are counted
by the server itself (its Prometheus counter).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.server import REQUESTS_COUNTER, ProductionServer, metric_samples

TARGET_REQUESTS = 10_000
METHODS = ("GET", "POST")
FIRST_ROUND_EXAMPLES = 20  # cases per operation in the first round: a short one, to measure the rates
LONGEST_ROUND_S = 60  # later rounds aim at this much time at most (what a stopped process would lose)
SHORTEST_ROUND_S = 10  # a round is not started with less time left than this
CHECKS = [
    "not_a_server_error",  # no 5xx
    "status_code_conformance",  # the status is one the document lists for the operation
    "content_type_conformance",  # the answer's Content-Type is one the document lists
    "response_schema_conformance",  # the body matches the document's schema for that status
    "response_headers_conformance",  # documented response headers are present and well-formed
    "negative_data_rejection",  # a request that breaks the schema gets a 4xx, never a 2xx
    "unsupported_method",  # a method the path does not have gets 405
    "allow_header_conformance",  # ... with an Allow header naming the documented methods
    "missing_required_header",  # a documented required header left out gets a 4xx
]
# Left out: positive_data_acceptance (a request valid by the schema must get a 2xx: the schema cannot say that
# random bytes must decode as an image, or that a V2 tensor's data must match its shape, so rejecting those
# with a 4xx is right); use_after_free and ensure_resource_availability (stateful checks for resources that
# are created and deleted: the service has none); ignored_auth and object_level_authorization (no auth).


class Counts:
    """The server's request counts: all, by the two methods fuzzed (the checks also send others, for 405s), and
    its 5xx, one scrape each. A scrape is counted by the server once answered, so every reading but the first
    includes the scrapes before it: `scrapes` keeps their number."""

    def __init__(self, server: ProductionServer):
        self.server, self.scrapes = server, 0

    def read(self) -> dict[str, int]:
        samples = metric_samples(self.server.url, REQUESTS_COUNTER)
        self.scrapes += 1
        found = dict.fromkeys((*METHODS, "all", "5xx"), 0)
        for labels, value in samples:
            found["all"] += int(value)
            if labels.get("method") in METHODS:
                found[labels["method"]] += int(value)
            if labels.get("status", "").startswith("5"):
                found["5xx"] += int(value)
        return found


def command(server: ProductionServer, method: str, seed: int, phases: str, examples: int, report: Path) -> list:
    return [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
        "--include-method", method, "--checks", ",".join(CHECKS), "--mode", "all", "--phases", phases,
        "--max-examples", str(examples), "--workers", "1", "--request-timeout", "10", "--seed", str(seed),
        "--generation-database", "none", "--max-failures", "100", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip


def read_report(path: Path) -> dict | None:
    """schemathesis' JSON report, or None when there is none to read (a process stopped before writing it)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_round(server: ProductionServer, work: Path, seed: int, phases: str, examples: dict, limit_s: float) -> dict:
    """One schemathesis process per method, side by side, each stopped at limit_s: {method: what it did}."""
    deadline = time.monotonic() + limit_s
    processes = {}
    for method in METHODS:
        report = work / f"schemathesis-{seed}-{method}.json"
        report.unlink(missing_ok=True)
        log = work / f"schemathesis-{seed}-{method}.log"
        argv = command(server, method, seed, phases, examples[method], report)
        with open(log, "wb") as output:
            processes[method] = (argv, report, log, time.monotonic(),
                                 subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT))  # fmt: skip
    ended = {}
    while len(ended) < len(processes) and time.monotonic() < deadline:
        for method, (*_, process) in processes.items():
            if method not in ended and process.poll() is not None:
                ended[method] = time.monotonic()
        time.sleep(0.2)
    runs = {}
    for method, (argv, report, log, started, process) in processes.items():
        stopped = process.poll() is None
        if stopped:
            process.kill()
            process.wait(timeout=10)
        summary = read_report(report)
        runs[method] = {
            "command": " ".join(argv[1:]),
            "examples": examples[method],
            "seconds": round(ended.get(method, time.monotonic()) - started, 1),
            "stopped_at_the_time_limit": stopped,
            "exit_code": process.returncode,
            "report": summary is not None,
            "test_cases": (summary or {}).get("test_cases"),
            "failures": (summary or {}).get("failures", []),
            "errors": (summary or {}).get("errors", []),
            "output_tail": log.read_text(errors="replace")[-3000:]
            if summary is None or summary.get("failures")
            else "",
        }
    return runs


def next_examples(runs: dict, sent: dict[str, int], aim_s: float) -> dict[str, int]:
    """Cases per operation for the next round, per method: what its measured rates fit into aim_s seconds."""
    examples = {}
    for method, run in runs.items():
        requests_per_example = max(1.0, sent[method] / run["examples"])  # over-estimated by the first round's phases
        requests_per_second = sent[method] / max(0.5, run["seconds"])
        examples[method] = max(1, int(aim_s * requests_per_second / requests_per_example))
    return examples


def run(server: ProductionServer, work: Path, budget_s: float, target: int = TARGET_REQUESTS) -> dict:
    deadline = time.monotonic() + budget_s
    pids = server.worker_pids()
    counts = Counts(server)
    first = before = counts.read()
    examples = dict.fromkeys(METHODS, FIRST_ROUND_EXAMPLES)
    rounds, sent = [], 0
    while sent < target and (left := deadline - time.monotonic()) >= SHORTEST_ROUND_S:
        phases = "fuzzing" if rounds else "examples,coverage,fuzzing"
        runs = run_round(server, work, len(rounds), phases, examples, left)
        after = counts.read()
        by_method = {method: after[method] - before[method] for method in METHODS}
        by_method["GET"] -= 1  # the scrape that read `before`
        before = after
        sent = after["all"] - first["all"] - (counts.scrapes - 1)
        rounds.append({"seed": len(rounds), "phases": phases, "requests": by_method, "runs": runs})
        aim_s = min(LONGEST_ROUND_S, 0.8 * (deadline - time.monotonic()))
        examples = next_examples(runs, by_method, aim_s)
    runs = [run for done in rounds for run in done["runs"].values()]
    failures = [failure for run in runs for failure in run["failures"]]
    return {
        "budget_s": budget_s,
        "target": target,
        "requests": sent,
        "test_cases": sum((run["test_cases"] or {}).get("generated", 0) for run in runs),
        "server_5xx": before["5xx"] - first["5xx"],
        "failures": sum(failure.get("count", 1) for failure in failures),
        "failed_checks": [
            f"{failure.get('title')} ({failure.get('code')}): {failure.get('operations')}" for failure in failures
        ],
        "runs_reported": sum(run["report"] for run in runs),
        "runs": len(runs),
        "tool_errors": sum(len(run["errors"]) for run in runs),
        "worker_deaths": len(set(pids) - set(server.worker_pids())) + (0 if server.alive() else len(pids)),
        "rounds": rounds,
    }
