"""Benchmark: bounded load tests of the service on 127.0.0.1: WSGI servers side by side, the V2 protocol,
and the naive baseline.

    python -m bench.bench_serve [--duration 10] [--connections 16] [--repeats 3]   (make bench-serve)

The same Flask app runs under gunicorn sync workers (the baseline), gunicorn gthread workers, Granian's WSGI
interface with 32 threads per worker (bench/granian_wsgi.py) and Granian through serving/rsgi.py
(`python -m serving`, the production server), 2 workers each (harness/server.py starts them), beside the
naive server (torch behind Flask's development server). wrk (Debian's package) drives each scenario for
a fixed time, the repeats interleaved: single raw PNG posts and 64-image multipart batches on every
server, the V2 protocol on Granian (harness/v2_bodies.py: JSON FP32 batch 1, binary FP32 batch 64, binary
image_bytes PNG batch 64), one multipart PNG on the naive server. Then each server is probed for
keep-alive, ordinary requests beside 8 and beside 100 stalled clients, and a worker killed under load
(harness/probes.py). Prints medians and the ratios, writes bench/results/serve.json, stops everything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from harness import ROOT, probes, v2_bodies, wrk
from harness.images import multipart, png
from harness.server import ProductionServer, server_command
from training.data import load_fashion_mnist


def multipart_pngs(images: list[bytes]) -> tuple[bytes, str]:
    """PNG files under the field "image", as a browser or curl sends them: (body, Content-Type)."""
    return multipart([("image", f"{i}.png", data) for i, data in enumerate(images)], part_type="image/png")


def median_of(runs: list[dict]) -> dict:
    numbers = [key for key, value in runs[0].items() if isinstance(value, int | float)]
    return {key: statistics.median(run[key] for run in runs) for key in numbers} | {"runs": runs}


# The WSGI servers compared, each around the same app with 2 workers: name -> (command, FASHION_SOFTMAX_* settings).
GUNICORN = [str(Path(sys.executable).with_name("gunicorn")), "-c", "bench/gunicorn_baseline.conf.py"]
SERVERS = {
    "gunicorn_sync": (GUNICORN, {"threads": 1}),  # the baseline
    "gunicorn_gthread": (GUNICORN, {"threads": 8}),
    "granian_wsgi": ([sys.executable, "-m", "bench.granian_wsgi"], {}),  # 32 threads per worker reading bodies
    "granian": (server_command(), {}),  # the production server (serving/server.py: RSGI)
}


def beside_stalled_ms(url: str, body: bytes, stalled: int) -> float | None:
    """Median ms of ordinary requests for 2 s beside `stalled` clients that sent headers and no body; None if
    none was answered within 5 s (the server is frozen)."""
    found = probes.slow_clients_while_timing(url, body, stalled, seconds=2, byte_every_s=None)
    return round(found["p50_ms"], 1) if found["answered"] else None


def probe(name: str, server: ProductionServer, single: Path, single_png: bytes) -> dict:
    """Keep-alive, ordinary requests beside stalled clients, a worker killed under wrk (harness/probes.py)."""
    keep_alive = probes.keeps_alive(server.url, single_png)
    stalled = beside_stalled_ms(server.url, single_png, 8)
    crowd = beside_stalled_ms(server.url, single_png, 100)  # more than 2 x 32 threads
    death = probes.worker_killed_under_load(server, single, "image/png", 16, seconds=6, kill_after_s=2)
    found = {
        "keep_alive": keep_alive,
        "beside_8_stalled_clients_ms": stalled,
        "beside_100_stalled_clients_ms": crowd,
        "worker_killed_failed_requests": death["wrk"]["errors"],
        "worker_killed_requests": death["wrk"]["requests"],
        "worker_replaced": death["replaced"],
    }
    print(f"{name}: {found}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per load test")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--repeats", type=int, default=3, help="load tests per scenario; medians are reported")
    parser.add_argument("--model-dir", type=Path, default=ROOT / "artifacts")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--report", type=Path, default=ROOT / "bench/results/serve.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench_serve: wrk not found; install Debian's package: sudo apt-get install wrk")
    if not (args.model_dir / "model.json").exists():
        sys.exit(f"bench_serve: no model in {args.model_dir}; run `make train-export` first")

    _, test = load_fashion_mnist(args.data_dir)
    pixels = test.images[:64].numpy()
    images = [png(image) for image in pixels]
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    bodies = {
        "single_raw_png": (images[0], "image/png", {}, 1),
        "batch64_multipart": (*multipart_pngs(images), {}, 64),
    }
    v2 = {
        "v2_json_fp32_batch1": v2_bodies.json_fp32(pixels[:1]),
        "v2_binary_fp32_batch64": v2_bodies.binary_fp32(pixels),
        "v2_image_bytes_png_batch64": v2_bodies.binary_image_bytes(images),
    }
    servers = {name: ProductionServer(args.model_dir, work / f"{name}.log", command=command, **settings)
               for name, (command, settings) in SERVERS.items()}  # fmt: skip
    # one process, no /ready: any answer says it listens
    servers["naive"] = ProductionServer(args.model_dir, work / "naive.log", workers=0, ready_path=None,
                                        command=[sys.executable, "-m", "bench.naive_server"])  # fmt: skip
    scenarios = {}  # name -> (url, body, content type, images per request, extra headers)
    for name in SERVERS:
        for kind, (body, content_type, headers, per_request) in bodies.items():
            scenarios[f"{name}_{kind}"] = (f"{servers[name].url}/predict", body, content_type, per_request, headers)
    for name, (body, content_type, headers, per_request) in v2.items():
        scenarios[f"granian_{name}"] = (f"{servers['granian'].url}{v2_bodies.INFER}", body, content_type,
                                        per_request, headers)  # fmt: skip
    scenarios["naive_single_multipart_png"] = (f"{servers['naive'].url}/predict", *multipart_pngs(images[:1]), 1, {})
    files = {name: work / f"{name}.bin" for name in scenarios}
    for name, scenario in scenarios.items():
        files[name].write_bytes(scenario[1])
    results: dict[str, list[dict]] = {name: [] for name in scenarios}
    behaviour = {}
    try:
        with contextlib.ExitStack() as running:
            for server in servers.values():
                running.enter_context(server)
            for name, (url, _, content_type, per_request, headers) in scenarios.items():  # warm-up, not measured
                wrk.post_for(url, files[name], content_type, args.connections, 2, headers, per_request)
            for repeat in range(args.repeats):  # interleaved: a slow moment of the machine hits every scenario
                for name, (url, _, content_type, per_request, headers) in scenarios.items():
                    results[name].append(wrk.post_for(url, files[name], content_type, args.connections,
                                                      args.duration, headers, per_request))  # fmt: skip
                    print(f"run {repeat + 1}/{args.repeats} {name}: {results[name][-1]}", flush=True)
            for name in SERVERS:
                behaviour[name] = probe(name, servers[name], files[f"{name}_single_raw_png"], images[0])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    summary = {name: median_of(runs) for name, runs in results.items()}

    def ratio(a: str, b: str, key: str) -> float:
        return summary[a][key] / summary[b][key]

    report = {
        "load": {"duration_s": args.duration, "connections": args.connections, "repeats": args.repeats,
                 "generator": "wrk -t1, same machine", "host": "127.0.0.1"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "scenarios": summary,
        "servers": behaviour,
        "ratios": {
            # the production server over the baseline: > 1 more requests (images) per second; p99 <= 1 no worse
            "granian_vs_gunicorn_sync_single_png_requests": ratio(
                "granian_single_raw_png", "gunicorn_sync_single_raw_png", "requests_per_second"),
            "granian_vs_gunicorn_sync_single_png_p99": ratio(
                "granian_single_raw_png", "gunicorn_sync_single_raw_png", "p99_ms"),
            "granian_vs_gunicorn_sync_batch64_images": ratio(
                "granian_batch64_multipart", "gunicorn_sync_batch64_multipart", "images_per_second"),
            # the same two for Granian's WSGI interface (32 threads per worker)
            "granian_wsgi_vs_gunicorn_sync_single_png_requests": ratio(
                "granian_wsgi_single_raw_png", "gunicorn_sync_single_raw_png", "requests_per_second"),
            "granian_wsgi_vs_gunicorn_sync_single_png_p99": ratio(
                "granian_wsgi_single_raw_png", "gunicorn_sync_single_raw_png", "p99_ms"),
            # the V2 protocol's binary tensors over multipart PNGs, its JSON over a raw PNG
            "v2_binary64_vs_multipart64_images": ratio(
                "granian_v2_binary_fp32_batch64", "granian_batch64_multipart", "images_per_second"),
            "v2_json1_vs_single_png_requests": ratio(
                "granian_v2_json_fp32_batch1", "granian_single_raw_png", "requests_per_second"),
            "single_png_vs_naive_requests": ratio(
                "granian_single_raw_png", "naive_single_multipart_png", "requests_per_second"),
        },
    }  # fmt: skip
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")

    print(f"\n{'scenario (medians)':42}{'req/s':>9}{'images/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}")
    for name, row in summary.items():
        print(f"{name:42}{row['requests_per_second']:9.0f}{row['images_per_second']:10.0f}"
              f"{row['p50_ms']:8.2f}{row['p99_ms']:8.2f}{row['errors']:7.0f}")  # fmt: skip
    print(f"\n{'server':18}{'keep-alive':>11}{'beside 8 stalled':>18}{'beside 100 stalled':>20}"
          f"{'worker killed: failed/sent, replaced':>40}")  # fmt: skip
    for name, row in behaviour.items():
        stalled, crowd = (
            "frozen" if row[key] is None else f"{row[key]} ms"
            for key in ("beside_8_stalled_clients_ms", "beside_100_stalled_clients_ms")
        )
        killed = f"{row['worker_killed_failed_requests']}/{row['worker_killed_requests']}, {row['worker_replaced']}"
        print(f"{name:18}{row['keep_alive']!s:>11}{stalled:>18}{crowd:>20}{killed:>40}")
    print("")
    for name, value in report["ratios"].items():
        print(f"{name}: {value:.2f}x")
    print(f"report: {args.report}")


if __name__ == "__main__":
    main()
