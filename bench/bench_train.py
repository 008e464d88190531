"""Benchmark: 10 epochs with the book's settings, our loop vs the book's DataLoader loop.

    python -m bench.bench_train [--repeats 3] [--book-workers 4]   (make bench-train)

Both run in this process, on the same machine, alternating (three runs of ours per run
of the book's), from data already read into memory; prints min and median seconds, the
speed-up and both test accuracies, and writes bench/results/train.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch

from bench.book_loop import load_datasets, train_book
from training.data import load_fashion_mnist
from training.train import RECIPES, fit

OURS_PER_REPEAT = 3


def settle() -> None:
    """Let the previous run's DataLoader workers exit before the next timing starts."""
    gc.collect()
    time.sleep(2.0)


def summarize(runs: list[dict]) -> dict:
    seconds = [r["seconds"] for r in runs]
    return {
        "runs": runs,
        "min_seconds": min(seconds),
        "median_seconds": statistics.median(seconds),
        "test_accuracy_median": statistics.median(r["test_accuracy"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each loop")
    parser.add_argument("--book-workers", type=int, default=4, help="DataLoader workers of the book's loop")
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--report", type=Path, default=Path("bench/results/train.json"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)  # DataLoader's "4 workers on 2 cores" notice

    started = time.perf_counter()
    train_split, test_split = load_fashion_mnist(args.data_dir)  # also puts the raw files where the book reads them
    read_seconds = time.perf_counter() - started
    book_train, book_test = load_datasets(str(args.data_dir))
    config, device = RECIPES["book"], torch.device("cpu")

    ours, book = [], []
    for repeat in range(args.repeats):
        settle()
        for _ in range(OURS_PER_REPEAT):  # ours is cheap: more samples, a steadier median
            result = fit(config, train_split, test_split, device)
            ours.append({"seconds": result.seconds, "test_accuracy": result.history[-1].test_accuracy})
        settle()
        seconds, accuracy = train_book(book_train, book_test, num_workers=args.book_workers, seed=repeat)
        book.append({"seconds": seconds, "test_accuracy": accuracy})
        print(
            f"run {repeat + 1}/{args.repeats}: ours {ours[-1]['seconds']:.3f}s acc {ours[-1]['test_accuracy']:.4f}"
            f" | book {seconds:.2f}s acc {accuracy:.4f}",
            flush=True,
        )

    report = {
        "benchmark": "10 epochs, lr 0.1, batch 256 (the book's settings), CPU",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
        "dataset_read_seconds": read_seconds,
        "ours": summarize(ours),
        "book": {**summarize(book), "dataloader_workers": args.book_workers},
    }
    report["speedup_min"] = report["book"]["min_seconds"] / report["ours"]["min_seconds"]
    report["speedup_median"] = report["book"]["median_seconds"] / report["ours"]["median_seconds"]
    report["accuracy_gap_points"] = 100 * (
        report["ours"]["test_accuracy_median"] - report["book"]["test_accuracy_median"]
    )
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2) + "\n")

    o, b = report["ours"], report["book"]
    print(f"\n{'':14}{'min s':>10}{'median s':>10}{'test acc':>10}")
    print(f"{'ours':14}{o['min_seconds']:10.3f}{o['median_seconds']:10.3f}{o['test_accuracy_median']:10.4f}")
    print(f"{'book loop':14}{b['min_seconds']:10.3f}{b['median_seconds']:10.3f}{b['test_accuracy_median']:10.4f}")
    print(
        f"speed-up: {report['speedup_median']:.1f}x (median), {report['speedup_min']:.1f}x (min); "
        f"accuracy gap {report['accuracy_gap_points']:+.2f} points; dataset read once: {read_seconds:.2f}s; "
        f"report: {args.report}"
    )


if __name__ == "__main__":
    main()
