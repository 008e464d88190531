"""Fuzzing the live server with schemathesis, driven by the OpenAPI document it serves at /openapi.json, within
a time budget.

    result = run(server, work_dir, budget_s=150)   # result["requests"], result["failures"], result["server_5xx"]

Every operation, in schemathesis' "all" mode: valid requests and requests that break the schema (wrong types,
missing or extra fields, bodies that are not what the content type says), each with the server's token;
schemathesis' ignored_auth check sends each protected operation again without it and with a wrong one, and
expects a refusal. The GET and the POST operations run
as two schemathesis processes side by side, each given the budget (less what it needs to start and to write
its report) as its `--max-time`: it runs the document's examples and the coverage phase, then generates new
cases until that time is spent. So the requests sent follow from the machine's speed: the target is a figure
to reach, not a count to wait for. A process still running GRACE_S after the end of the budget (a machine so
slow that starting took far longer) is stopped; it leaves no report, and that is counted, never read. The
requests are counted by the server itself (its Prometheus counter).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.server import ProductionServer

TARGET_REQUESTS = 10_000
METHODS = ("GET", "POST")
STARTUP_S = 10  # of the budget, left to each schemathesis process to start (imports, reading the document)
GRACE_S = 30  # past the budget, before a process that has not finished is stopped
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
    "ignored_auth",  # an operation that declares the bearer scheme refuses requests without the token, or a wrong one
]
# Left out: positive_data_acceptance (a request valid by the schema must get a 2xx: the schema cannot say that
# random bytes must decode as an image, or that a V2 tensor's data must match its shape, so rejecting those
# with a 4xx is right); use_after_free and ensure_resource_availability (stateful checks for resources that
# are created and deleted: the service has none); object_level_authorization (tokens are not per object).


def command(server: ProductionServer, method: str, seconds: int, report: Path) -> list[str]:
    return [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
        "--include-method", method, "--checks", ",".join(CHECKS), "--mode", "all",
        "--phases", "examples,coverage,fuzzing", "--max-time", str(seconds), "--workers", "1",
        "--request-timeout", "10", "--seed", "0", "--generation-database", "none", "--max-failures", "100",
        "--no-color", "--report", "json", "--report-json-path", str(report),
        *[option for name, value in server.auth.items() for option in ("--header", f"{name}: {value}")],
    ]  # fmt: skip


def read_report(path: Path) -> dict | None:
    """schemathesis' JSON report, or None when there is none to read (a process stopped before writing it)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run(server: ProductionServer, work: Path, budget_s: float, target: int = TARGET_REQUESTS) -> dict:
    started = time.monotonic()
    deadline = started + budget_s + GRACE_S
    pids = server.worker_pids()
    before, before_5xx = server.requests_counted(), server.requests_counted(status="5")
    fuzz_s = int(budget_s - STARTUP_S)
    processes = {}
    for method in METHODS if fuzz_s >= 1 else ():  # less time than a start needs: nothing is sent
        report, log = work / f"schemathesis-{method}.json", work / f"schemathesis-{method}.log"
        report.unlink(missing_ok=True)
        argv = command(server, method, fuzz_s, report)
        with open(log, "wb") as output:
            processes[method] = (argv, report, log, subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT))
    runs = {}
    for method, (argv, report, log, process) in processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        summary = read_report(report)
        runs[method] = {
            "command": " ".join(argv[1:]),
            "exit_code": process.returncode,
            "report": summary is not None,
            "stop_reason": (summary or {}).get("stop_reason"),
            "test_cases": (summary or {}).get("test_cases"),
            "failures": (summary or {}).get("failures", []),
            "errors": (summary or {}).get("errors", []),
            "output_tail": log.read_text(errors="replace")[-3000:],
        }
    # the server counts a scrape after answering it: the two that read `before` and `before_5xx` are in this count
    sent = server.requests_counted() - before - 2
    failures = [failure for run in runs.values() for failure in run["failures"]]
    result = {
        "budget_s": budget_s,
        "max_time_s": max(0, fuzz_s),
        "seconds": round(time.monotonic() - started, 1),
        "target": target,
        "requests": sent,
        "test_cases": sum((run["test_cases"] or {}).get("generated", 0) for run in runs.values()),
        "server_5xx": server.requests_counted(status="5") - before_5xx,
        "failures": sum(failure.get("count", 1) for failure in failures),
        "failed_checks": [
            f"{failure.get('title')} ({failure.get('code')}): {failure.get('operations')}" for failure in failures
        ],
        "runs_reported": sum(run["report"] for run in runs.values()),
        "runs": len(runs),
        "tool_errors": sum(len(run["errors"]) for run in runs.values()),
        "worker_deaths": len(set(pids) - set(server.worker_pids())) + (0 if server.alive() else len(pids)),
        "by_method": runs,
    }
    # schemathesis repeats headers in its commands and reproduction hints: the report keeps no token
    return json.loads(json.dumps(result).replace(server.auth.get("Authorization", "\0"), "Bearer <token>"))
