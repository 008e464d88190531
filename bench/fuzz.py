"""Fuzzing the live server with schemathesis, driven by the OpenAPI document it serves at /openapi.json.

    result = run(server, work_dir, max_examples=MAX_EXAMPLES)

Every operation, in schemathesis' "all" mode: valid requests and requests that break the schema
(wrong types, missing or extra fields, bodies that are not what the content type says). The
requests sent are counted by the server itself (its Prometheus counter, before and after).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench.production_server import ProductionServer

MAX_EXAMPLES = 900  # per operation and phase; with the cheap operations this gives > 10,000 requests
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
DOCUMENT_CHECKS = {"status_code_conformance", "content_type_conformance", "response_schema_conformance",
                   "response_headers_conformance"}  # fmt: skip


def run(server: ProductionServer, work: Path, max_examples: int = MAX_EXAMPLES, limit_s: float = 240) -> dict:
    pids = server.worker_pids()
    before, before_5xx = server.requests_counted(), server.requests_counted(status="5")
    report = work / "schemathesis.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run", f"{server.url}/openapi.json",
        "--checks", ",".join(CHECKS), "--mode", "all", "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(max_examples), "--workers", "2", "--request-timeout", "10", "--seed", "0",
        "--generation-database", "none", "--max-failures", "100", "--no-color",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, timeout=limit_s, check=False)
    # the server counts a scrape after answering it: `before` is in `after`, nothing else of ours is
    sent = server.requests_counted() - before - 1
    summary = json.loads(report.read_text()) if report.exists() else {}
    failures = summary.get("failures", [])
    checks_failed = [failure.get("check", failure.get("title", "?")) for failure in failures]
    return {
        "command": " ".join(command[1:]),
        "exit_code": finished.returncode,
        "output_tail": finished.stdout[-3000:] + finished.stderr[-2000:],
        "requests": sent,
        "test_cases": summary.get("test_cases"),
        "operations": summary.get("operations"),
        "server_5xx": server.requests_counted(status="5") - before_5xx,
        "failures": len(failures) if summary else -1,  # -1: no report came
        "failed_checks": checks_failed,
        "document_failures": sum(check in DOCUMENT_CHECKS for check in checks_failed),
        "errors": summary.get("errors"),
        "worker_deaths": len(set(pids) - set(server.worker_pids())) + (0 if server.alive() else len(pids)),
    }
