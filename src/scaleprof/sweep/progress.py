"""What a running sweep shows on stderr: on a terminal a rich progress bar (the current point, its
stage, elapsed time and ETA) with a line per finished point above it; elsewhere (a log file, CI)
only the line per finished point. The runner calls ``show`` when a stage starts and ``advance``
when a point is done."""

from __future__ import annotations

import sys

from scaleprof.profile.types import LatencyStats


class Progress:
    """A sweep's display for ``total`` points; ``enabled=None`` means "when stderr is a terminal"."""

    def __init__(self, total: int, enabled: bool | None):
        self.total = total
        self.done = 0
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled and total:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                    console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task("sweep", total=total)

    def show(self, point, stage: str) -> None:
        """``point`` (a sweep.grid.Point) has entered ``stage`` (worded for people: "timing")."""
        if self.bar is not None:
            self.bar.update(self.task, description=f"{stage}: {point.label}")

    def advance(self, point, latency: LatencyStats | None, failed: str | None = None) -> None:
        """``point`` is done: measured (``latency``), failed (the error) or measured by another sweep."""
        self.done += 1
        if latency:
            what = f"{latency.median:.2f} ms ({latency.throughput:.1f} img/s)"
            contention, rounds = latency.contention or {}, latency.rounds
            if rounds:
                what += f" [{rounds.get('kept', 0)} quiet rounds, {rounds.get('discarded', 0)} discarded]"
            if latency.contended and rounds:
                what += f" [contended: {rounds.get('reason')}]"
            elif latency.contended:
                what += (f" [contended: other processes took {contention.get('other_cores', 0):.2f} of "
                         f"{contention.get('cores', '?')} cores]")
        elif failed:
            what = f"FAILED {failed}"
        else:
            what = "measured by another sweep"
        line = f"[{self.done}/{self.total}] {point.label}: {what}"
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
            self.bar.advance(self.task)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
