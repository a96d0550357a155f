"""A sweep checks its whole grid before it runs (issue 23): a large grid says how far the checks are."""

from __future__ import annotations

import scaleprof.sweep.stages as stages_module
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.stages import UpstreamStages


def _grid(points: int):
    return parse_config("models: [efficientnet_b0]\nstrategies: [d]\nscales: [1]\ntargets: [cpu-ort]\n"
                        f"batch_sizes: [{', '.join(str(b) for b in range(1, points + 1))}]\n")


def test_a_large_grid_reports_progress_and_a_small_one_stays_silent(monkeypatch, capsys):
    monkeypatch.setattr(stages_module, "PROGRESS_EVERY_S", -1.0)     # every point is "a while" later
    stages = UpstreamStages()
    stages.validate(_grid(stages_module.PROGRESS_FROM_POINTS - 1))
    assert capsys.readouterr().err == ""
    stages.validate(_grid(stages_module.PROGRESS_FROM_POINTS))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == stages_module.PROGRESS_FROM_POINTS
    assert lines[-1].startswith(f"checking the grid: {len(lines)} of {len(lines)} points")
