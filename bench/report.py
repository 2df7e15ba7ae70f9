"""Shared printing for benchmark figures, so `make bench` output reads the same everywhere."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def figure(name: str, value: float, unit: str, *, target: str = "") -> None:
    suffix = f" (target {target})" if target else ""
    print(f"figure: {name} = {value:,.3f} {unit}{suffix}", flush=True)


def latency(name: str, seconds: Sequence[float], *, target_p99_us: float | None = None) -> None:
    """Print p50/p99/p99.9 of a latency sample in microseconds."""
    us = [s * 1e6 for s in seconds]
    target = f"p99 <= {target_p99_us:,.0f} us" if target_p99_us is not None else ""
    figure(f"{name} p50", statistics.median(us), "us")
    figure(f"{name} p99", percentile(us, 99), "us", target=target)
    figure(f"{name} p99.9", percentile(us, 99.9), "us")


def against_floor(
    name: str, value: float, floor: float, unit: str, *, target: str = "", lower_is_better: bool
) -> None:
    """Print a figure beside its floor measured in the same run, and their ratio.

    The ratio is figure/floor for latencies (lower is better, >= 1) and figure/floor for
    throughputs (higher is better, <= 1), so the target reads in the issue's own terms.
    """
    ratio = value / floor if floor else float("inf")
    better = "lower" if lower_is_better else "higher"
    suffix = f"; target {target}" if target else ""
    print(
        f"figure: {name} = {value:,.3f} {unit} (floor {floor:,.3f} {unit}; ratio {ratio:.2f}"
        f"{suffix}; {better} is better)",
        flush=True,
    )
