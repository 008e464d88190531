"""The results of `make bench-peers` as a reader gets them: medians over the rounds, ours/peer ratios, the
tables printed, the chart drawn.

    cell = summarize(runs)                  # each wrk run's figures -> their medians, the runs kept
    ratios(cells)                           # per peer: ours/peer requests/s and p99
    print(table(report)); print(ratio_table(report)); draw(report, path)
"""

from __future__ import annotations

import statistics
from pathlib import Path

FIGURES = ("requests_per_second", "p50_ms", "p99_ms", "errors", "steal_percent")


def summarize(runs: list[dict]) -> dict:
    """The median of each figure over the runs (one run per round), and the runs themselves."""
    return {key: statistics.median(run[key] for run in runs) for key in FIGURES} | {"runs": runs}


def ratios(cells: dict[str, dict], ours: str = "ours") -> dict[str, dict[str, float]]:
    """Per peer timed on the payload: our requests/s over theirs (> 1: we serve more), our p99 over theirs
    (< 1: our slowest answers come sooner)."""
    mine = cells[ours]
    return {
        name: {key: mine[key] / cell[key] for key in ("requests_per_second", "p99_ms") if cell[key]}
        for name, cell in cells.items()
        if name != ours
    }


def table(report: dict) -> str:
    """Every server on every payload it was timed on (medians), with the ratios; then what was not timed, and why."""
    titles = {name: server["title"] for name, server in report["servers"].items()}
    lines = ["| payload | server | requests/s | p50 ms | p99 ms | errors | CPU steal % | ours/peer requests/s "
             "| ours/peer p99 |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for payload in report["payloads"].values():
        for name, cell in payload["cells"].items():
            ratio = payload["ratios"].get(name, {})
            lines.append(
                f"| {payload['title']} | {titles[name]} | {cell['requests_per_second']:.0f} | {cell['p50_ms']:.2f} "
                f"| {cell['p99_ms']:.2f} | {cell['errors']:.0f} | {cell['steal_percent']:.1f} "
                f"| {_ratio(ratio.get('requests_per_second'))} | {_ratio(ratio.get('p99_ms'))} |"
            )
    skipped = [f"- {titles[name]}: {why}" for name, why in _not_timed(report)]
    return "\n".join(lines + (["", "Not timed:", *skipped] if skipped else []))


def ratio_table(report: dict) -> str:
    """One row per payload, one column per peer: ours/peer requests/s (the README's summary)."""
    peers = [name for name, server in report["servers"].items() if name != "ours" and server["status"] == "ok"]
    titles = [report["servers"][name]["title"] for name in peers]
    lines = [f"| ours/peer, requests/s | {' | '.join(titles)} |", "|---" * (len(peers) + 1) + "|"]
    for payload in report["payloads"].values():
        row = [_ratio(payload["ratios"].get(name, {}).get("requests_per_second")) for name in peers]
        lines.append(f"| {payload['title']} | {' | '.join(row)} |")
    return "\n".join(lines)


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _not_timed(report: dict) -> list[tuple[str, str]]:
    gone = [(name, f"unavailable: {server['reason']}") for name, server in report["servers"].items()
            if server["status"] != "ok"]  # fmt: skip
    refused = [(name, f"{payload['title']}: {why}") for payload in report["payloads"].values()
               for name, why in payload["not_taken"].items()]  # fmt: skip
    return gone + refused


def draw(report: dict, path: Path) -> None:
    """Requests/s (log scale: batch 1 and batch 64 differ by far more than the servers do) and p99 per payload,
    one bar per server, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = list(report["servers"])
    payloads = list(report["payloads"].values())
    width = 0.8 / len(servers)
    figure, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    for axis, key, label in ((axes[0], "requests_per_second", "requests/s (median)"), (axes[1], "p99_ms", "p99 ms")):
        for i, name in enumerate(servers):
            xs = [x + (i - (len(servers) - 1) / 2) * width for x, p in enumerate(payloads) if name in p["cells"]]
            ys = [p["cells"][name][key] for p in payloads if name in p["cells"]]
            axis.bar(xs, ys, width, label=report["servers"][name]["title"])
        axis.set_yscale("log")
        axis.set_ylabel(label)
        axis.grid(axis="y", which="both", alpha=0.3)
    axes[1].set_xticks(range(len(payloads)), [p["title"] for p in payloads])
    conditions = report["conditions"]
    axes[0].set_title(f"Same model.onnx, {conditions['client']}, medians of {conditions['rounds']} round(s) "
                      f"of {conditions['duration_s']} s")  # fmt: skip
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncols=4, fontsize=9)
    figure.tight_layout(rect=(0, 0.07, 1, 1))  # the legend below the charts, clear of the bars
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
