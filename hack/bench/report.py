"""The bench's table: one row per figure (what was measured, the target, met or not), the
machine it ran on, and notes; printed as Markdown so docs/benchmarks.md can keep it."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.0f} GiB RAM, "
            f"Linux {platform.release()}, Python {sys.version.split()[0]}; "
            f"load average at start {load}")


@dataclass
class Row:
    figure: str
    measured: str
    target: str = ""
    met: bool | None = None


@dataclass
class Report:
    machine: str = field(default_factory=machine)
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, measured: str, target: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(figure, measured, target, met))
        print(f"  {figure}: {measured}" + (f"  (target {target})" if target else ""),
              flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def markdown(self) -> str:
        lines = [f"Machine: {self.machine}. Run: {self.started}, load average at the end "
                 + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + ".", "",
                 "| figure | measured | target | |", "| --- | --- | --- | --- |"]
        for row in self.rows:
            verdict = {True: "met", False: "**missed**", None: ""}[row.met]
            lines.append(f"| {row.figure} | {row.measured} | {row.target} | {verdict} |")
        if self.notes:
            lines += ["", *[f"- {note}" for note in self.notes]]
        return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"


def ratio(value: float) -> str:
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.3f}x"
