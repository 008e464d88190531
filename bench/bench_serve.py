"""Benchmark: bounded load tests of the service on 127.0.0.1: WSGI servers side by side, the V2 protocol,
and the naive baseline.

    python -m bench.bench_serve [--duration 10] [--connections 16] [--repeats 3]   (make bench-serve)

The same Flask app runs under gunicorn sync workers (the baseline: the service before Granian), gunicorn
gthread workers, Granian's WSGI interface with 32 threads per worker (bench/granian_wsgi.py) and Granian
through serving/rsgi.py (`python -m serving`, the production server), 2 workers each, beside the
naive server (torch behind Flask's development server). wrk (Debian's package) drives each scenario for
a fixed time, the repeats interleaved: single raw PNG posts and 64-image multipart batches on every
server, the V2 protocol on Granian (bench/v2_bodies.py: JSON FP32 batch 1, binary FP32 batch 64, binary
image_bytes PNG batch 64), one multipart PNG on the naive server. Then each server is probed for
keep-alive, an ordinary request beside 8 and beside 100 stalled clients, and a worker killed under load
(bench/server_probes.py). Prints medians and the ratios, writes bench/results/serve.json, stops everything.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image

from bench import server_probes, v2_bodies, wrk
from bench.production_server import free_port
from training.data import load_fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
BOUNDARY = "fashionsoftmaxbench"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def png(pixels) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def multipart(images: list[bytes]) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="{i}.png"\r\n'
        f"Content-Type: image/png\r\n\r\n".encode()
        + data
        + b"\r\n"
        for i, data in enumerate(images)
    ]
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not up after {seconds} s")


def median_of(runs: list[dict]) -> dict:
    numbers = [key for key, value in runs[0].items() if isinstance(value, int | float)]
    return {key: statistics.median(run[key] for run in runs) for key in numbers} | {"runs": runs}


# The WSGI servers compared, each around the same app with 2 workers: name -> (command, extra environment).
GUNICORN = [str(Path(sys.executable).with_name("gunicorn")), "-c", "bench/gunicorn_baseline.conf.py"]
SERVERS = {
    "gunicorn_sync": (GUNICORN, {"FASHION_SOFTMAX_THREADS": "1"}),  # the baseline: the service before Granian
    "gunicorn_gthread": (GUNICORN, {"FASHION_SOFTMAX_THREADS": "8"}),
    # Granian's WSGI interface, 32 threads per worker reading bodies: the production server before serving/rsgi.py
    "granian_wsgi": ([sys.executable, "-m", "bench.granian_wsgi"], {}),
    "granian": ([sys.executable, "-m", "serving"], {}),  # the production server (serving/server.py: RSGI)
}


def start(command: list[str], port: int, model_dir: Path, extra: dict) -> subprocess.Popen:
    env = {**os.environ, "FASHION_SOFTMAX_HOST": "127.0.0.1", "FASHION_SOFTMAX_PORT": str(port),
           "FASHION_SOFTMAX_MODEL_DIR": str(model_dir), "FASHION_SOFTMAX_WORKERS": "2",
           "FASHION_SOFTMAX_MODEL_RELOAD_INTERVAL": "2", **extra}  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def probe(name: str, port: int, process: subprocess.Popen, single: Path, single_png: bytes) -> dict:
    """Keep-alive, an ordinary request beside stalled clients, a worker killed under wrk (bench/server_probes.py)."""
    stalled = server_probes.beside_stalled_clients(port, single_png)
    crowd = server_probes.beside_stalled_clients(port, single_png, stalled=100)  # more than 2 x 32 threads
    command = wrk.command(f"http://127.0.0.1:{port}/predict", single, "image/png", 16, 6)
    death = server_probes.worker_death(process.pid, command)
    killed = wrk.parse(death["output"])
    found = {
        "keep_alive": server_probes.keeps_alive(port, single_png),
        "beside_8_stalled_clients_ms": None if stalled is None else round(stalled * 1000, 1),
        "beside_100_stalled_clients_ms": None if crowd is None else round(crowd * 1000, 1),
        "worker_killed_failed_requests": killed["errors"],
        "worker_killed_requests": killed["requests"],
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
        "batch64_multipart": (multipart(images), MULTIPART_TYPE, {}, 64),
    }
    v2 = {
        "v2_json_fp32_batch1": v2_bodies.json_fp32(pixels[:1]),
        "v2_binary_fp32_batch64": v2_bodies.binary_fp32(pixels),
        "v2_image_bytes_png_batch64": v2_bodies.binary_image_bytes(images),
    }
    ports = {name: free_port() for name in [*SERVERS, "naive"]}
    processes = {name: start(command, ports[name], args.model_dir, extra) for name, (command, extra) in SERVERS.items()}
    processes["naive"] = subprocess.Popen(
        [sys.executable, "-m", "bench.naive_server", str(args.model_dir), str(ports["naive"])],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    scenarios = {}  # name -> (url, body file, content type, images per request, extra headers)
    for server in SERVERS:
        for kind, (body, content_type, headers, per_request) in bodies.items():
            scenarios[f"{server}_{kind}"] = (f"http://127.0.0.1:{ports[server]}/predict", body, content_type,
                                             per_request, headers)  # fmt: skip
    for name, (body, content_type, headers, per_request) in v2.items():
        scenarios[f"granian_{name}"] = (f"http://127.0.0.1:{ports['granian']}{v2_bodies.INFER}", body,
                                        content_type, per_request, headers)  # fmt: skip
    scenarios["naive_single_multipart_png"] = (f"http://127.0.0.1:{ports['naive']}/predict",
                                               multipart(images[:1]), MULTIPART_TYPE, 1, {})  # fmt: skip
    files = {name: work / f"{name}.bin" for name in scenarios}
    for name, scenario in scenarios.items():
        files[name].write_bytes(scenario[1])
    results: dict[str, list[dict]] = {name: [] for name in scenarios}
    behaviour = {}
    try:
        for name, process in processes.items():
            wait_ready(f"http://127.0.0.1:{ports[name]}/" + ("ready" if name != "naive" else ""), process)
        for name, (url, _, content_type, per_request, headers) in scenarios.items():  # warm-up, not measured
            wrk.post_for(url, files[name], content_type, args.connections, 2, headers, per_request)
        for repeat in range(args.repeats):  # interleaved: a slow moment of the machine hits every scenario
            for name, (url, _, content_type, per_request, headers) in scenarios.items():
                results[name].append(
                    wrk.post_for(url, files[name], content_type, args.connections, args.duration, headers, per_request)
                )
                print(f"run {repeat + 1}/{args.repeats} {name}: {results[name][-1]}", flush=True)
        for name in SERVERS:
            behaviour[name] = probe(name, ports[name], processes[name], files[f"{name}_single_raw_png"], images[0])
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)
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
            # issue 10: >= 2.0 (p99 no worse than the baseline's) and >= 1.3
            "granian_vs_gunicorn_sync_single_png_requests": ratio(
                "granian_single_raw_png", "gunicorn_sync_single_raw_png", "requests_per_second"),
            "granian_vs_gunicorn_sync_single_png_p99": ratio(  # <= 1.0: p99 no worse
                "granian_single_raw_png", "gunicorn_sync_single_raw_png", "p99_ms"),
            "granian_vs_gunicorn_sync_batch64_images": ratio(
                "granian_batch64_multipart", "gunicorn_sync_batch64_multipart", "images_per_second"),
            # the same two for Granian's WSGI interface (32 threads per worker), the production server before
            "granian_wsgi_vs_gunicorn_sync_single_png_requests": ratio(
                "granian_wsgi_single_raw_png", "gunicorn_sync_single_raw_png", "requests_per_second"),
            "granian_wsgi_vs_gunicorn_sync_single_png_p99": ratio(
                "granian_wsgi_single_raw_png", "gunicorn_sync_single_raw_png", "p99_ms"),
            # issue 7: >= 2 and >= 0.75
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
