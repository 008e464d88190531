"""Fuzzing the live server with schemathesis, driven by the OpenAPI document it serves at /openapi.json.

    result = run(server, work_dir)  # result["requests"], result["failures"], result["server_5xx"]

Every operation, in schemathesis' "all" mode: valid requests and requests that break the schema
(wrong types, missing or extra fields, bodies that are not what the content type says), each with the
server's token; schemathesis' ignored_auth check sends each protected operation again without it and with
a wrong one, and expects a refusal. The requests sent are counted by the server itself (its Prometheus
counter, before and after).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.production_server import ProductionServer

# Schemathesis sends ~70-100 cases/s per core here; the GET and POST operations run as two processes, side by
# side, with these cases per operation and phase: about 8,000 GET requests (4 operations with path parameters)
# and 3,600 POST (their schemas run out of new cases sooner).
MAX_EXAMPLES = {"GET": 2000, "POST": 1000}
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


def run(server: ProductionServer, work: Path, scale: float = 1.0, limit_s: float = 240) -> dict:
    """scale multiplies MAX_EXAMPLES (a quick run: 0.1)."""
    pids = server.worker_pids()
    before, before_5xx = server.requests_counted(), server.requests_counted(status="5")
    runs = {}
    for method, examples in MAX_EXAMPLES.items():
        report = work / f"schemathesis-{method}.json"
        command = [
            str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
            "--include-method", method, "--checks", ",".join(CHECKS), "--mode", "all",
            "--phases", "examples,coverage,fuzzing", "--max-examples", str(max(1, round(examples * scale))),
            "--workers", "1", "--request-timeout", "10", "--seed", "0", "--generation-database", "none",
            "--max-failures", "100", "--no-color", "--report", "json", "--report-json-path", str(report),
            *[option for name, value in server.auth.items() for option in ("--header", f"{name}: {value}")],
        ]  # fmt: skip
        log = open(work / f"schemathesis-{method}.log", "w+")  # noqa: SIM115 (closed below)
        runs[method] = (command, report, log, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + limit_s
    results = {}
    for method, (command, report, log, process) in runs.items():
        try:
            process.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.seek(0)
        summary = json.loads(report.read_text()) if report.exists() else {}
        failures = summary.get("failures", [])
        results[method] = {
            "command": " ".join(command[1:]),
            "exit_code": process.returncode,
            "output_tail": log.read()[-3000:],
            "test_cases": summary.get("test_cases"),
            "operations": summary.get("operations"),
            "failures": failures if summary else None,  # None: no report came (killed at the time limit)
            "errors": summary.get("errors"),
        }
        log.close()
    # the server counts a scrape after answering it: `before` is in this count, nothing else of ours is
    sent = server.requests_counted() - before - 1
    failures = [failure for run in results.values() for failure in (run["failures"] or [])]
    no_report = sum(run["failures"] is None for run in results.values())
    result = {
        "requests": sent,
        "test_cases": sum((run["test_cases"] or {}).get("generated", 0) for run in results.values()),
        "server_5xx": server.requests_counted(status="5") - before_5xx,
        "failures": sum(failure.get("count", 1) for failure in failures) + 1000 * no_report,
        "failed_checks": [f"{failure['title']} ({failure['code']}): {failure['operations']}" for failure in failures],
        "tool_errors": sum(len(run["errors"] or []) for run in results.values()),
        "worker_deaths": len(set(pids) - set(server.worker_pids())) + (0 if server.alive() else len(pids)),
        "runs": results,
    }
    # schemathesis repeats headers in its commands and reproduction hints: the report keeps no token
    return json.loads(json.dumps(result).replace(server.auth.get("Authorization", "\0"), "Bearer <token>"))
