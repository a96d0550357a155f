"""Executors without Ray: the default one and --jobs N (preparation in worker processes)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sweep.fake_stages import GRID, FakeStages, stored
from scaleprof.errors import BadInput
from scaleprof.sweep.config_file import parse_config
from scaleprof.sweep.executors import make_executor
from scaleprof.sweep.executors.local import PREPARE_STAGE, PreparingExecutor
from scaleprof.sweep.executors.plan import bundles, network_plans
from scaleprof.sweep.runner import run_sweep

NETWORKS = 11            # s = 1 (shared) + 5 strategies x s in {2, 4}
@dataclass
class MarkingStages(FakeStages):
    """Exports leave a marker naming the process; the first timing notes the markers of others."""

    marker_dir: str = ""
    seen_at_first_timing: list = field(default_factory=list)

    def export(self, spec, precision, flavour, cache_dir):
        path = super().export(spec, precision, flavour, cache_dir)
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        (Path(cache_dir) / f"{spec.key}-{precision}.{os.getpid()}.marker").touch()
        return path

    def time(self, engine, batch, resolution, timing):
        if not self.seen_at_first_timing:
            markers = Path(self.marker_dir).glob("*.marker")
            self.seen_at_first_timing.append({m.name.split(".", 1)[0] for m in markers
                                              if not m.name.endswith(f".{os.getpid()}.marker")})
        return super().time(engine, batch, resolution, timing)


def test_groups_bundle_and_plan_by_network():
    config = parse_config(GRID)
    groups: dict[tuple, list] = {}
    for p in config.points():
        groups.setdefault((p.strategy, p.scale), []).append(p)
    groups = list(groups.values())
    assert len(groups) == 15 and len(bundles(groups)) == NETWORKS        # the five s = 1 groups are one bundle
    plans = network_plans(config, groups)
    assert len(plans) == NETWORKS and plans[0].builds[0][1] == ((1, None), (2, None))


def test_jobs_measure_what_serial_measures(tmp_path):
    serial = run_sweep(parse_config(GRID), tmp_path / "serial", stages=FakeStages(), progress=False,
                       log=lambda m: None)
    said = []
    jobs = run_sweep(parse_config(GRID), tmp_path / "jobs", stages=FakeStages(), progress=False, log=said.append,
                     executor=make_executor(jobs=2))
    assert (jobs.measured, jobs.reused, jobs.failed) == (serial.measured, serial.reused, serial.failed) == (30, 8, 0)
    assert stored(tmp_path / "jobs") == stored(tmp_path / "serial")
    assert said == [f"preparing {NETWORKS} networks in 2 worker processes before measuring "
                    "(a CPU target: preparation never overlaps timing)"]
    assert jobs.stage_seconds[PREPARE_STAGE] > 0


def test_cpu_target_is_timed_only_after_every_network_is_prepared(tmp_path):
    stages = MarkingStages(marker_dir=str(tmp_path / "out" / "onnx"))
    run_sweep(parse_config(GRID), tmp_path / "out", stages=stages, progress=False, log=lambda m: None,
              executor=PreparingExecutor(2))
    assert len(stages.seen_at_first_timing[0]) == NETWORKS     # exported by the workers, all before any timing


def test_gpu_targets_overlap_and_measure_the_same(tmp_path):
    text = GRID.replace("[cpu-ort]", "[{name: gpu, backend: tensorrt, device: cuda}]")
    run_sweep(parse_config(text), tmp_path / "serial", stages=FakeStages(), progress=False, log=lambda m: None)
    said = []
    run_sweep(parse_config(text), tmp_path / "jobs", stages=FakeStages(), progress=False, log=said.append,
              executor=PreparingExecutor(2))
    assert stored(tmp_path / "jobs") == stored(tmp_path / "serial")
    assert said and "while measuring" in said[0]


def test_a_failing_preparation_is_recorded_by_its_group_as_without_jobs(tmp_path):
    failing = FakeStages(fail_strategies=("w",))
    run_sweep(parse_config(GRID), tmp_path / "serial", stages=failing, progress=False, log=lambda m: None)
    result = run_sweep(parse_config(GRID), tmp_path / "jobs", stages=FakeStages(fail_strategies=("w",)),
                       progress=False, log=lambda m: None, executor=PreparingExecutor(2))
    assert (result.failed, result.measured) == (4, 26)
    assert stored(tmp_path / "jobs") == stored(tmp_path / "serial")
    assert all(e.startswith("export: RuntimeError: cannot export <w> & friends") for _, e in result.failures)


@pytest.mark.parametrize("jobs, ray, needle", [
    (0, None, "--jobs: expected a positive number"),
    (2, "auto", "--jobs and --ray do not combine"),
    (1, " ", "--ray: expected 'auto'"),
])
def test_bad_executor_options_are_bad_input(jobs, ray, needle):
    with pytest.raises(BadInput, match=needle):
        make_executor(jobs, ray)


def test_one_job_is_the_runners_own_executor():
    assert make_executor(1) is None


def test_cli_bad_jobs_is_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "scaleprof.cli", "sweep", "demo", "-o", str(tmp_path / "out"),
                           "--jobs", "0"], capture_output=True, text=True, timeout=300)
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--jobs: expected a positive number" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
