"""What the report says of points that could not be measured faithfully (LatencyStats.contended):
no verdict rests on them, too few faithful points give none, and a neighbour that stayed through
every round is one line. Where they come from: scaleprof.profile.rounds and docs/measurement.md."""

from __future__ import annotations

from scaleprof.profile.rounds import BUSY_THROUGHOUT

MIN_VERDICT_POINTS = 3      # and half of a slice's points: with fewer measured faithfully, no verdict
REMEDY = ("To get one, time them again when the machine is quieter: `scaleprof sweep CONFIG --remeasure-noisy`, "
          "with `--wait-quiet S` to wait for quiet first, or give the target `threads: 1` to leave the "
          "neighbours a core.")


def too_few(faithful: int, total: int) -> bool:
    """Whether ``faithful`` of a slice's ``total`` points are too few for a verdict."""
    return faithful < max(MIN_VERDICT_POINTS, (total + 1) // 2)


def no_verdict(group: str, batch, faithful: int, total: int, left_out: str) -> str:
    return (f"On {group} at batch {batch}: no verdict: only {faithful} of {total} points were measured faithfully "
            f"({total - faithful} contended: {left_out}). {REMEDY}")


def listing(names: list[str], most: int = 6) -> str:
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def unfaithful_line(measured: int, reasons: list[str]) -> str | None:
    """The sweep's last line when a neighbour stayed through every round of some points (``reasons``:
    the contended points' Pooled.reason), or when all ``measured`` points were contended; else None."""
    throughout = [why[why.index(BUSY_THROUGHOUT):] for why in reasons if BUSY_THROUGHOUT in why]
    if not throughout and not (measured and len(reasons) == measured):
        return None
    what = (f"{throughout[0]} of {len(throughout)} of {measured} points" if throughout
            else f"all {measured} points were contended")
    return f"scaleprof could not measure faithfully on this machine: {what}; no verdict is drawn from them. {REMEDY}"
