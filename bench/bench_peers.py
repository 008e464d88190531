"""Benchmark: our production server beside the serving frameworks a user could pick for the same model.onnx
(bench/peers/catalog.py), the same payloads from the same client, every answer checked equal to ours first.

    python -m bench.bench_peers [--rounds 3] [--duration 10] [--peers mlserver,kserve] [--quick]   (make bench-peers)

Each peer runs in its own pinned virtual environment (.peers/<name>/, installed on first use, several at once;
the bare Flask app, the floor under ours, in the project's own);
installing and starting the peers has a time limit, and a peer that cannot be installed or started in it is
reported and left out. All servers run side by side on 127.0.0.1. Every payload goes to every server once and
the answer is compared with ours: a server that refuses a payload or answers differently is not timed on it
(the report says why). Then wrk (-t2 -c16) posts each payload to each server for a fixed time: a discarded
warm-up, then rounds in which the servers take turns (each round in a rotated order), CPU steal recorded per
run. Writes bench/results/peers.json and peers.png with the medians and the ours/peer ratios, and prints the
tables. --quick (CI): one short round, figures printed, not asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image

from bench.peers import answers, report, steal
from bench.peers.catalog import OURS, OURS_PATHS, PAYLOADS, PEERS, Peer
from bench.peers.launch import PeerProcess, PeerUnavailable, ensure_environments
from bench.peers.onnx_model import V2_INFER
from harness import ROOT, free_port, v2_bodies, wrk
from harness.server import ProductionServer

CLIENT_THREADS = 2
OURS_TITLE = "ours (Granian + Flask, 2 workers)"


@dataclass(frozen=True)
class Payload:
    body: bytes
    content_type: str
    headers: dict[str, str]
    file: Path  # the body on disk, for wrk


@dataclass(frozen=True)
class Server:
    title: str
    url: str
    paths: dict[str, str | None]  # payload -> path; None: the server has no route for it


def build_payloads(pixels, work: Path) -> dict[str, Payload]:
    """The four bodies of catalog.PAYLOADS from real test images: pixels (64, 28, 28) uint8."""
    buffer = io.BytesIO()
    Image.fromarray(pixels[0]).save(buffer, "PNG")
    built = {
        "png": (buffer.getvalue(), "image/png", {}, 1),
        "v2_json_1": v2_bodies.json_fp32(pixels[:1]),
        "v2_binary_64": v2_bodies.binary_fp32(pixels[:64]),
        "v2_json_64": v2_bodies.json_fp32(pixels[:64]),
    }
    made = {}
    for name, (body, content_type, headers, _) in built.items():
        file = work / f"{name}.bin"
        file.write_bytes(body)
        made[name] = Payload(body, content_type, headers, file)
    return made


def start_peer(peer: Peer, python: Path, stack: ExitStack, model: Path, work: Path, limit_s: float) -> Server:
    """The peer's server started with its environment's Python; PeerUnavailable says why it did not start."""
    started = time.monotonic()
    port = free_port()
    command = [str(python), "-m", peer.module, "--model", str(model), "--port", str(port), "--workers",
               str(peer.workers)]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stack.enter_context(PeerProcess(command, url + peer.ready_path, work / peer.name, limit_s=limit_s))
    print(f"{peer.name}: ready in {time.monotonic() - started:.0f} s", flush=True)
    return Server(peer.title(), url, {name: peer.path(name) for name in PAYLOADS})


def answer(server: Server, payload: str, sent: Payload) -> tuple:
    """(probabilities, None), or (None, why the server's answer cannot be compared)."""
    path = server.paths[payload]
    if path is None:
        return None, "no route of this server takes it"
    try:
        response = requests.post(server.url + path, data=sent.body, timeout=30,
                                 headers={"Content-Type": sent.content_type, **sent.headers})  # fmt: skip
    except requests.RequestException as error:
        return None, f"no answer ({type(error).__name__})"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}: {response.text[:120].strip()!r}"
    try:
        return answers.probabilities(response.content, response.headers), None
    except (ValueError, KeyError, TypeError) as error:
        return None, f"answer not understood: {error}"


def compare(servers: dict[str, Server], sent: dict[str, Payload]) -> tuple[dict[str, list[str]], dict[str, dict]]:
    """Per payload: the servers whose answer equals ours (ours first), and why each other one is not timed."""
    timed, not_taken = {}, {}
    for payload, body in sent.items():
        reference, why = answer(servers[OURS], payload, body)
        if reference is None:
            raise RuntimeError(f"our server did not answer {payload}: {why}")
        timed[payload], not_taken[payload] = [OURS], {}
        for name, server in servers.items():
            if name == OURS:
                continue
            theirs, why = answer(server, payload, body)
            why = why or answers.disagreement(reference, theirs)
            if why is None:
                timed[payload].append(name)
            else:
                not_taken[payload][name] = why
                print(f"{name}, {payload}: not timed ({why})", flush=True)
    return timed, not_taken


def run_wrk(server: Server, payload: str, sent: Payload, seconds: float, connections: int) -> dict:
    """One wrk run with the CPU steal over it."""
    before = steal.cpu_times()
    result = wrk.post_for(server.url + server.paths[payload], sent.file, sent.content_type, connections, seconds,
                          sent.headers, threads=CLIENT_THREADS)  # fmt: skip
    return result | {"steal_percent": round(steal.steal_percent(before, steal.cpu_times()), 2)}


def measure(servers: dict[str, Server], sent: dict[str, Payload], timed: dict[str, list[str]], args) -> dict:
    """Warm-up (discarded), then the rounds: per payload, every timed server in turn, the order rotated each round."""
    runs: dict[str, dict[str, list[dict]]] = {payload: {name: [] for name in names} for payload, names in timed.items()}
    for payload, names in timed.items():
        for name in names:
            run_wrk(servers[name], payload, sent[payload], args.warmup, args.connections)
    for round_ in range(args.rounds):
        for payload, names in timed.items():
            turn = round_ % len(names)
            for name in names[turn:] + names[:turn]:
                run = run_wrk(servers[name], payload, sent[payload], args.duration, args.connections)
                runs[payload][name].append(run)
                print(f"round {round_ + 1}/{args.rounds} {payload} {name}: {run['requests_per_second']:.0f} req/s, "
                      f"p99 {run['p99_ms']:.1f} ms, {run['errors']} errors, steal {run['steal_percent']}%",
                      flush=True)  # fmt: skip
    return runs


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds; medians are reported")
    parser.add_argument("--duration", type=float, default=10, help="seconds per timed wrk run")
    parser.add_argument("--warmup", type=float, default=2, help="seconds per discarded warm-up run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (wrk -c)")
    parser.add_argument("--peers", default=",".join(peer.name for peer in PEERS), help="comma-separated peers")
    parser.add_argument("--setup-limit", type=float, default=None,
                        help="seconds to install and start all the peers (1200; --quick: 900)")  # fmt: skip
    parser.add_argument("--start-limit", type=float, default=180, help="seconds for one peer to become ready")
    parser.add_argument("--quick", action="store_true", help="CI: 1 round of 3 s, 1 s warm-up, reports *-quick.*")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    args.setup_limit = args.setup_limit or (900 if args.quick else 1200)
    unknown = set(filter(None, args.peers.split(","))) - {peer.name for peer in PEERS}
    if unknown:
        parser.error(f"unknown peers {sorted(unknown)}; known: {', '.join(peer.name for peer in PEERS)}")
    if not shutil.which("wrk"):
        sys.exit("bench_peers: wrk not found; install Debian's package: sudo apt-get install wrk")
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"bench_peers: no model in {args.model_dir}; run `make train-export` first")
    return args


def start_servers(stack: ExitStack, args, work: Path) -> tuple[dict[str, Server], dict[str, dict]]:
    """Ours, then every chosen peer that installs and starts, all within args.setup_limit for the peers:
    the servers running, and every server's status (a reason for each one left out)."""
    ours = stack.enter_context(ProductionServer(args.model_dir, work / "ours.log"))
    servers = {OURS: Server(OURS_TITLE, ours.url, {name: OURS_PATHS.get(name, V2_INFER) for name in PAYLOADS})}
    statuses = {OURS: {"title": OURS_TITLE, "status": "ok"}}
    chosen = [peer for peer in PEERS if peer.name in args.peers.split(",")]
    deadline = time.monotonic() + args.setup_limit
    pythons = ensure_environments(sorted({peer.environment for peer in chosen} - {None}), limit_s=args.setup_limit)
    ready = [name for name, python in pythons.items() if not isinstance(python, PeerUnavailable)]
    print(f"peer environments ready: {', '.join(ready) or 'none'} ({args.setup_limit - left(deadline):.0f} s)",
          flush=True)  # fmt: skip
    model = (args.model_dir / "model.onnx").resolve()
    for peer in chosen:
        try:
            python = pythons[peer.environment] if peer.environment else Path(sys.executable)  # else: the project's
            if isinstance(python, PeerUnavailable):
                raise python
            if left(deadline) <= 0:
                raise PeerUnavailable(f"not started: the {args.setup_limit:.0f} s for setting up the peers are spent")
            limit_s = min(args.start_limit, left(deadline))
            servers[peer.name] = start_peer(peer, python, stack, model, work, limit_s)
            statuses[peer.name] = {"title": servers[peer.name].title, "status": "ok"}
        except PeerUnavailable as error:
            statuses[peer.name] = {"title": peer.title(), "status": "unavailable", "reason": str(error)}
            print(f"{peer.name}: skipped, {error}", flush=True)
            keep_log(work / peer.name / "server.log", args.results / f"peers-{peer.name}.log")
    return servers, statuses


def keep_log(log: Path, kept: Path) -> None:
    """A peer's server log beside the report when it did not start: the whole story, not one line."""
    if log.exists():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(log, kept)
        print(f"  its log: {kept}", flush=True)


def left(deadline: float) -> float:
    return deadline - time.monotonic()


def results_of(args, statuses: dict, runs: dict, not_taken: dict) -> dict:
    """What peers.json holds: the conditions, every server's status, per payload the medians, ratios and refusals."""
    conditions = {"client": f"wrk -t{CLIENT_THREADS} -c{args.connections}", "duration_s": args.duration,
                  "warmup_s": args.warmup, "rounds": args.rounds, "host": "127.0.0.1", "cpus": os.cpu_count(),
                  "platform": platform.platform(), "tolerance": answers.TOLERANCE, "quick": args.quick}  # fmt: skip
    payloads = {}
    for payload, cells in runs.items():
        summary = {name: report.summarize(cell_runs) for name, cell_runs in cells.items()}
        payloads[payload] = {"title": PAYLOADS[payload], "cells": summary, "ratios": report.ratios(summary),
                              "not_taken": not_taken[payload]}  # fmt: skip
    return {"conditions": conditions, "servers": statuses, "payloads": payloads}


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    from training.data import load_fashion_mnist  # torch: only once the arguments are good

    _, test = load_fashion_mnist(args.data_dir)
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        sent = build_payloads(test.images[:64].numpy(), work)
        with ExitStack() as stack:
            servers, statuses = start_servers(stack, args, work)
            timed, not_taken = compare(servers, sent)
            runs = measure(servers, sent, timed, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = results_of(args, statuses, runs, not_taken)
    stem = "peers-quick" if args.quick else "peers"
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"{stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    report.draw(results, args.results / f"{stem}.png")
    print(f"\n{report.table(results)}\n\n{report.ratio_table(results)}\n")
    print(f"report: {args.results / f'{stem}.json'}, chart: {args.results / f'{stem}.png'}")


if __name__ == "__main__":
    main()
