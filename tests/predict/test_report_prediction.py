"""The report's prediction sections, on synthetic stores with seeded specs and features."""

import pytest
from tests.predict.synthetic import bisection_scales, fill_store, seed_caches

from scaleprof.report import write_report
from scaleprof.report.prediction import REPORT_ALPHAS

STRATEGIES = ("d", "w", "r", "dw", "dr", "wr", "dwr")


@pytest.fixture
def two_targets(tmp_path, user_cache):
    seed_caches(STRATEGIES, sorted(bisection_scales()), alphas=REPORT_ALPHAS)
    fill_store(tmp_path, target="cpu-ort")
    fill_store(tmp_path, target="gpu-x", env_key="env1", device="cuda", slower=0.25)
    return tmp_path


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 3)
    return text[start:end if end > 0 else None]


def test_report_shows_predicted_against_measured_per_target(two_targets):
    write_report(two_targets, budgets=[30.0], plots=False)
    text = (two_targets / "report.md").read_text()
    held = section(text, "Predicted from counts, checked on held-out points")
    for target in ("cpu-ort", "gpu-x"):
        assert f"{target} fp32 batch 1: held-out accuracy (15 networks)" in held
        assert f"{target} fp32 batch 1: calibrated on 7 networks" in held
    rows = [line for line in held.splitlines() if line.startswith("| efficientnet")]
    assert sum("| held out |" in r for r in rows) == 2 * (15 - 7) and sum("| yes |" in r for r in rows) == 2 * 7
    assert "best single metric" in held


def test_report_gives_the_best_alpha_next_to_the_papers(two_targets):
    write_report(two_targets, budgets=[30.0], plots=False)
    alpha = section((two_targets / "report.md").read_text(), "Best dWr alpha per latency budget (predicted)")
    rows = [line for line in alpha.splitlines() if line.startswith("| cpu-ort") or line.startswith("| gpu-x")]
    assert len(rows) == 2 and all("| 30 |" in r for r in rows)


def test_report_compares_targets_side_by_side(two_targets):
    write_report(two_targets, budgets=[30.0], plots=False)
    side = section((two_targets / "report.md").read_text(), "Targets side by side")
    assert "speedup vs cpu-ort: gpu-x" in side
    assert "| 4 |" in side                                          # gpu-x is 4x faster everywhere
    assert "Which strategy wins at equal flops" in side and "Which metric predicts latency where" in side


def test_reports_are_identical_when_written_again(two_targets):
    write_report(two_targets, budgets=[30.0], plots=False)
    first = (two_targets / "report.md").read_text()
    write_report(two_targets, budgets=[30.0], plots=False)
    assert (two_targets / "report.md").read_text() == first
