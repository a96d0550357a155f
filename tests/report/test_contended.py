"""No verdict from contended points: verdicts, fits, exponents and budgets leave them out and say so;
too few left gives no verdict and how to get one; a neighbour throughout is one line at the end."""

from __future__ import annotations

from dataclasses import replace

from scaleprof.report.analysis import analyze
from scaleprof.report.tables import result_row
from tests.report.synthetic import points, synthetic_rows

STRATEGIES = ("d", "w", "r", "dwr", "dWr")


def _rounds(kept=3, discarded=0, contended=False, reason=""):
    return {"kept": kept, "discarded": discarded, "contended": contended, "reason": reason}


def _timed(rows, contended_labels=(), slowdown=4.0, reason="1 of 6 rounds quiet (needed 3)"):
    """The points timed in rounds; those of ``contended_labels`` ((strategy, scale)) contended, their
    latency ``slowdown`` times too slow, as a neighbour would have left it."""
    out = []
    for p in rows:
        if (p.strategy, p.scale) in contended_labels:
            lat = replace(p.latency, median=p.latency.median * slowdown, rounds=_rounds(1, 5, True, reason))
        else:
            lat = replace(p.latency, rounds=_rounds())
        out.append(replace(p, latency=lat))
    return out


def _flat(**kw):
    # latency follows layers alone: d's depth is what the slowed points would otherwise drag along
    return points(synthetic_rows(strategies=STRATEGIES, **kw))


CONTENDED = (("w", 4.0), ("dwr", 4.0), ("dWr", 4.0))


def test_contended_points_are_left_out_of_the_verdict_and_named():
    clean = analyze(_timed(_flat()))
    noisy = analyze(_timed(_flat(), CONTENDED))
    key = ("cpu-ort", 1)
    assert len(noisy.rows) == 12 and len(noisy.measured) == 15 and len(noisy.contended) == 3
    # the ranking is the one the faithful points give, not the one the slowed points would
    assert [m.metric for m in noisy.ranking[key]] == [m.metric for m in clean.ranking[key]]
    verdict = noisy.verdicts()[key]
    assert "Verdict from 12 of 15 points; 3 contended: efficientnet_b0 w x4" in verdict
    assert noisy.unfaithful() is None
    # and the slowed figures would have moved the fit had they been kept
    kept_anyway = analyze([replace(p, latency=replace(p.latency, rounds=None)) for p in _timed(_flat(), CONTENDED)])
    assert kept_anyway.fits[key]["acts"].linear.r < noisy.fits[key]["acts"].linear.r
    assert all(not r.contended for r in noisy.rows)
    assert all(e.scales == (1.0, 2.0) for e in noisy.exponents if e.strategy in ("w", "dwr", "dWr(0.8)"))


def test_too_few_faithful_points_give_no_verdict_and_how_to_get_one():
    every = tuple((s, float(x)) for s in STRATEGIES for x in (2, 4))
    result = analyze(_timed(_flat(), every))
    verdict = result.verdicts()[("cpu-ort", 1)]
    assert verdict.startswith("On cpu-ort at batch 1: no verdict: only 5 of 15 points were measured faithfully")
    assert "--remeasure-noisy" in verdict and "--wait-quiet" in verdict and "threads: 1" in verdict
    assert "predicts latency best" not in verdict
    assert result.budgets and all(p.row is None or not p.row.contended for p in result.budgets)


def test_a_neighbour_throughout_is_one_line():
    every = tuple((s, float(x)) for s in STRATEGIES for x in (1, 2, 4))
    reason = "other processes took 95% of the machine or more in every round"
    result = analyze(_timed(_flat(), every, slowdown=2.0, reason=reason))
    line = result.unfaithful()
    assert line.startswith("scaleprof could not measure faithfully on this machine: " + reason)
    assert "of 15 of 15 points" in line and "\n" not in line
    assert "no verdict" in result.verdicts()[("cpu-ort", 1)]


def test_the_csv_says_how_each_latency_was_obtained():
    timed = _timed(_flat(), CONTENDED)
    rows = {(p.strategy, p.scale): result_row(p) for p in timed}
    assert rows[("w", 4.0)]["rounds_kept"] == 1 and rows[("w", 4.0)]["rounds_discarded"] == 5
    assert rows[("w", 4.0)]["contended"] is True and "rounds quiet" in rows[("w", 4.0)]["contended_why"]
    assert rows[("d", 2.0)]["contended"] is False and rows[("d", 2.0)]["rounds_kept"] == 3
