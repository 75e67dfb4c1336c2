"""The machine, the versions and the Markdown tables a benchmark run prints."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThroughputRow:
    """Medians of one throughput case."""

    name: str
    serial_ops: float
    p50_us: float
    p99_us: float
    concurrent_ops: float


@dataclass(frozen=True, slots=True)
class Target:
    """One goal, expressed as a ratio between two measurements."""

    name: str
    value: float
    goal: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, else what platform reports."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_lines(redis_version: str, private_server: bool) -> list[str]:
    """Describe the machine, the versions and the command of this run."""
    server = "private redis-server on 127.0.0.1" if private_server else "shared Redis"
    return [
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, Redis server {redis_version} ({server}), "
        f"redis-py {package_version('redis')}, hiredis {package_version('hiredis')}, "
        f"limits {package_version('limits')}, djust_dist {package_version('djust_dist')}",
        f"- command: `{shlex.join(['python', '-m', 'benchmarks', *sys.argv[1:]])}`",
    ]


def throughput_table(rows: Sequence[ThroughputRow], tasks: int) -> list[str]:
    """Format the throughput rows, with ratios to the first row."""
    first = rows[0]
    lines = [
        f"| case | 1 at a time, ops/s | ratio | p50 µs | p99 µs | {tasks} tasks, ops/s | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.serial_ops:,.0f} | {row.serial_ops / first.serial_ops:.2f}x "
            f"| {row.p50_us:,.0f} | {row.p99_us:,.0f} | {row.concurrent_ops:,.0f} "
            f"| {row.concurrent_ops / first.concurrent_ops:.2f}x |"
        )
    return lines


def ratio_table(title: str, unit: str, rows: Sequence[tuple[str, float]]) -> list[str]:
    """Format named values with their ratio to the first one."""
    first = rows[0][1]
    lines = [f"| {title} | {unit} | ratio |", "|---|---:|---:|"]
    for name, value in rows:
        lines.append(f"| {name} | {value:,.4g} | {value / first:.2f}x |")
    return lines


def target_lines(targets: Sequence[Target]) -> list[str]:
    """Format each goal with its measured value and whether it was met."""
    lines = ["| target | measured | goal | met |", "|---|---:|---:|---|"]
    for target in targets:
        comparison = "≥" if target.higher_is_better else "≤"
        verdict = "yes" if target.met else "NO"
        lines.append(
            f"| {target.name} | {target.value:.3g} | {comparison} {target.goal:g} | {verdict} |"
        )
    return lines
