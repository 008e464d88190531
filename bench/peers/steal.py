"""CPU steal over an interval, from /proc/stat: the share of time this virtual machine's CPUs were ready to run
but the hypervisor ran something else. Recorded beside every timed run: a run with steal was slowed from outside.

    before = cpu_times(); ...; steal_percent(before, cpu_times())
"""

from __future__ import annotations

from pathlib import Path

# /proc/stat's "cpu" line: user nice system idle iowait irq softirq steal guest guest_nice (guest is in user)
STEAL = 7


def cpu_times(stat: str | None = None) -> list[int]:
    """The aggregate cpu line of /proc/stat (or of `stat`, its text), in clock ticks since boot."""
    text = Path("/proc/stat").read_text() if stat is None else stat
    fields = next(line for line in text.splitlines() if line.startswith("cpu ")).split()[1:]
    return [int(value) for value in fields]


def steal_percent(before: list[int], after: list[int]) -> float:
    """Steal as a percentage of all CPU time between two readings (0 when no time passed)."""
    spent = [later - earlier for earlier, later in zip(before, after, strict=True)][: STEAL + 1]
    total = sum(spent)
    return 100.0 * spent[STEAL] / total if total > 0 else 0.0
