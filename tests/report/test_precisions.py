"""Precisions at equal configuration: speedups over fp32 from twin points, activation bytes per
precision, and the verdict on whether latency still follows the fp32 metric in int8."""

from __future__ import annotations

import pytest

from scaleprof.report.analysis import analyze
from scaleprof.report.blocks import Table
from scaleprof.report.tables import activation_bytes, result_row
from scaleprof.report.precisions import mean_speedups, precision_pairs, sections, verdicts
from tests.report.synthetic import points, synthetic_rows


def with_precision(rows, precision, latency):
    return [dict(r, precision=precision, latency_ms_median=latency(r)) for r in rows]


@pytest.fixture
def fp32_rows():
    return synthetic_rows(strategies=("d", "w", "r", "dwr"), a_ms_per_mact=1.5, b_ms=2.0)


def test_int8_that_follows_acts_at_a_third_of_the_time(fp32_rows):
    int8 = with_precision(fp32_rows, "int8", lambda r: r["latency_ms_median"] / 3)
    analysis = analyze(points(fp32_rows + int8))
    pairs = precision_pairs(analysis.rows)
    assert len(pairs) == len(fp32_rows)              # every fp32 point has its int8 twin
    (key, (mean, low, high, n)), = mean_speedups(pairs).items()
    assert key == ("cpu-ort", "int8", 1) and mean == pytest.approx(3.0) and low == pytest.approx(3.0)
    (text,) = verdicts(analysis)
    assert "int8 runs 3.00x as fast as fp32" in text and "In int8 latency follows acts best (r=1.000), as in fp32" in text


def test_int8_that_follows_flops_is_said_to_no_longer_follow_acts(fp32_rows):
    int8 = with_precision(fp32_rows, "int8", lambda r: 0.002 * r["flops"] / 1e6 + 0.5)
    (text,) = verdicts(analyze(points(fp32_rows + int8)))
    assert "In int8 latency follows flops best" in text and "in fp32 acts (r=1.000)" in text
    assert "activations: r=1.000 in fp32" in text


def test_the_section_lists_twins_with_bytes_per_element(fp32_rows):
    int8 = with_precision(fp32_rows, "int8", lambda r: r["latency_ms_median"] / 2)
    analysis = analyze(points(fp32_rows + int8))
    (section,) = sections(analysis)
    table = next(b for b in section.blocks if isinstance(b, Table) and "speedup" in b.headers)
    assert len(table.rows) == len(precision_pairs(analysis.rows))
    base, other = precision_pairs(analysis.rows)[0].base, precision_pairs(analysis.rows)[0].other
    assert activation_bytes(base) == 4 * activation_bytes(other) == 4 * base.acts
    assert result_row(other)["act_bytes"] == other.acts                   # results.csv: one byte per int8 element
    ranking = next(b for b in section.blocks if isinstance(b, Table) and "metric ranking (Pearson r)" in b.headers)
    assert {row[2] for row in ranking.rows} == {"fp32", "int8"}


def test_no_section_without_fp32_twins(fp32_rows):
    assert sections(analyze(points(fp32_rows))) == []
    assert sections(analyze(points(with_precision(fp32_rows, "int8", lambda r: 1.0 + r["acts"] / 1e6)))) == []
