"""The control network: one fixed network timed in every round of an interleaved measurement.

Whatever slows the machine down during a round (a neighbour on the CPU or the GPU, clocks
throttling) slows the control too, so the control's median in a round, against its best median
over all rounds, says whether the round was contended. This needs neither /proc nor NVML: it
measures the effect, not the cause. A round's control is timed at its start, every few slices and
at its end, and the slowest of these judges it (a neighbour that comes mid-round is caught).

The best is only known once every round has run: a round judged quiet early on may turn out slow
against a later, quieter round. ``ControlJudge`` therefore keeps every round's control median and
judges them all again on demand.

A neighbour that never leaves slows every round alike, the control's best included, and no round
looks slower than the others: ``busy_throughout`` says so from the /proc evidence of the rounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TOLERANCE = 0.10            # a round whose control ran more than 10% slower than its best is contended
THROUGHOUT_SHARE = 0.5      # other processes took at least half of the machine in every kept round


@dataclass
class ControlJudge:
    """Each round's control median (ms), and which rounds are contended against the best of them."""

    tolerance: float = TOLERANCE
    medians: dict[int, float] = field(default_factory=dict)      # round index -> its slowest control median (ms)
    fastest: float | None = None                                 # the fastest control slice of any round

    def record(self, round_index: int, control_medians: list[float]) -> None:
        """The control's slice medians of one round: the slowest judges the round,
        the fastest of all the rounds' slices is the best."""
        if control_medians:
            self.medians[round_index] = max(control_medians)
            low = min(control_medians)
            self.fastest = low if self.fastest is None else min(self.fastest, low)

    @property
    def best(self) -> float | None:
        return self.fastest

    def ratio(self, round_index: int) -> float | None:
        """The round's control median over the best (1.0: as fast as the fastest round)."""
        best = self.best
        median = self.medians.get(round_index)
        if best is None or median is None or best <= 0:
            return None
        return median / best

    def contended(self, round_index: int) -> bool:
        """Whether the round's control ran more than ``tolerance`` slower than its best; a round
        without a control median is judged contended (nothing says it was quiet)."""
        ratio = self.ratio(round_index)
        return ratio is None or ratio > 1.0 + self.tolerance

    def quiet_rounds(self) -> set[int]:
        return {i for i in self.medians if not self.contended(i)}


def busy_throughout(evidence: list[dict | None], share: float = THROUGHOUT_SHARE) -> dict | None:
    """The /proc evidence (Contention.to_dict() per round) when other processes took at least
    ``share`` of the machine in every one of these rounds: a neighbour the control cannot see,
    since it slowed every round alike. None when any round was quieter, or none could be read."""
    known = [e for e in evidence if e]
    if not known or len(known) < len(evidence):
        return None
    if min(float(e.get("other_share") or 0.0) for e in known) < share:
        return None
    return min(known, key=lambda e: float(e.get("other_share") or 0.0))
