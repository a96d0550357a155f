"""Contention: what other processes took while a point was timed, from the kernel's accounting.

The real-process tests never assert timings, and they hold on a shared machine where others run
tests too: the hog's own CPU time (its /proc/PID/stat) must show up as other processes' time,
whatever else runs; the quiet case is checked only once the machine has been seen quiet."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from scaleprof.profile import contention
from scaleprof.profile.contention import (BUSY_SHARE, Contention, ContentionWatch, CpuSample, between,
                                          gpu_state, read_cpu, wait_until_quiet)
from scaleprof.profile.timing import time_runner
from scaleprof.profile.types import TimingSettings

linux_only = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="needs Linux /proc accounting")
SETTINGS = TimingSettings(warmup_iters=2, warmup_s=0.0, min_iters=5, min_time_s=1.0, target_ci=None,
                          max_time_s=1.0)


def _spin_ms() -> float:
    """One 'inference': about a millisecond of pure-Python work."""
    start = time.perf_counter()
    while time.perf_counter() - start < 0.001:
        sum(range(200))
    return (time.perf_counter() - start) * 1000.0


def _spin_s(seconds: float) -> None:
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        sum(range(200))


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hogs(count: int) -> list[int]:
    """Busy loops that are NOT this process's descendants (a shell starts them and exits, so they are
    re-parented): scaleprof counts its own children as its own time, and a neighbour is someone else."""
    loop = f'{sys.executable} -c "while True: pass" >/dev/null 2>&1 & echo $!'
    started = subprocess.run(["sh", "-c", "; ".join([loop] * count)], capture_output=True, text=True,
                             check=True, timeout=60)
    pids = [int(pid) for pid in started.stdout.split()]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and min(_cpu_s(pid) for pid in pids) <= 0:   # they have started
        time.sleep(0.05)
    return pids


def _usable_cores() -> int:
    """The cores this process (and so the hogs it starts) may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _hogs_for_a_busy_machine() -> int:
    """Enough hogs to take well over BUSY_SHARE of the cores /proc/stat counts, whatever their number; a
    skip where this process may use too few of them for any hog of its own to be that busy a neighbour."""
    cores, usable = read_cpu().cores, _usable_cores()
    if usable < 3 * BUSY_SHARE * cores:
        pytest.skip(f"this process may run on {usable} of the machine's {cores} cores: its hogs cannot "
                    f"take over {BUSY_SHARE:.0%} of the machine")
    return min(usable, max(min(cores, 4), math.ceil(3 * BUSY_SHARE * cores)))


def _stop(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _timed_under_watch() -> Contention:
    """Time the spinning runner; what the timing recorded about other processes."""
    stats = time_runner(_spin_ms, SETTINGS, batch=1, progress=False)
    assert stats.contended == stats.contention["flagged"]
    return Contention.from_dict(stats.contention)


# ------------------------------------------------------------------------------------ real processes

@linux_only
def test_a_cpu_hog_during_timing_is_flagged_and_its_time_counted_as_other():
    hogs = _hogs(_hogs_for_a_busy_machine())
    try:
        result = _timed_under_watch()
        with ContentionWatch() as watch:          # the hogs' own accounting, read inside the watched window
            before = sum(_cpu_s(pid) for pid in hogs)
            _spin_s(1.0)
            hog_s = sum(_cpu_s(pid) for pid in hogs) - before
    finally:
        _stop(hogs)
    assert result.flagged and result.other_share > BUSY_SHARE
    assert "contention" in result.warning() and "\n" not in result.warning()
    # whatever else runs, the hogs' time is other processes' time (clock-tick rounding aside), not ours
    assert watch.result.other_cpu_s >= 0.95 * hog_s - 0.05 and watch.result.flagged


@linux_only
def test_the_same_timing_on_a_quiet_machine_is_not_flagged():
    for _ in range(2):
        quiet, waited, seen = wait_until_quiet(max_wait_s=10.0, window_s=0.5)
        if not quiet:
            continue
        result = _timed_under_watch()
        if not result.flagged:
            assert result.other_share <= BUSY_SHARE and result.own_cpu_s > 0
            return
    pytest.skip(f"other processes kept this machine busy ({seen.summary() if seen else 'no reading'}): "
                "the quiet case cannot be seen now")


@linux_only
def test_children_of_this_process_are_its_own_time_not_a_neighbour():
    busy_child = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
    with ContentionWatch() as watch:
        subprocess.run([sys.executable, "-c", busy_child], check=True, timeout=120)
    assert watch.result.own_cpu_s >= 0.4


@linux_only
def test_read_cpu_counts_cores_and_moves_forward():
    first = read_cpu()
    _spin_ms()
    second = read_cpu()
    assert first.cores >= 1 and second.at > first.at and second.busy_s >= first.busy_s


# ------------------------------------------------------------------------------------ the arithmetic

def _sample(busy, own, at, cores=2, steal=0.0, load=0.5):
    return CpuSample(busy_s=busy, steal_s=steal, own_s=own, cores=cores, at=at, load1=load)


def test_other_time_is_the_machine_minus_this_process():
    result = between(_sample(100.0, 10.0, 0.0), _sample(101.9, 10.9, 1.0, load=1.2))
    assert result.other_cpu_s == pytest.approx(1.0) and result.own_cpu_s == pytest.approx(0.9)
    assert result.other_cores == pytest.approx(1.0) and result.other_share == pytest.approx(0.5)
    assert result.flagged and result.load_end == 1.2


def test_a_machine_where_only_this_process_ran_is_not_flagged():
    result = between(_sample(100.0, 10.0, 0.0), _sample(101.02, 11.0, 1.0))
    assert not result.flagged and result.other_share == pytest.approx(0.01)
    assert "warning" not in result.summary()


def test_clock_tick_rounding_never_makes_negative_time():
    result = between(_sample(100.0, 10.0, 0.0), _sample(100.98, 11.0, 1.0))
    assert result.other_cpu_s == 0.0 and not result.flagged


def test_threshold_and_gpu_neighbours_decide_the_flag():
    calm = between(_sample(0, 0, 0), _sample(0.3, 0, 1.0), threshold=0.2)
    assert not calm.flagged
    shared_gpu = between(_sample(0, 0, 0), _sample(0.0, 0, 1.0), gpu={"other_processes": [{"pid": 7}]})
    assert shared_gpu.flagged and "1 other process(es) on the GPU" in shared_gpu.summary()


def test_round_trip_through_a_dict():
    result = between(_sample(0, 0, 0), _sample(1.5, 0.5, 2.0), gpu={"sm_mhz": 1980.0, "other_processes": []})
    data = result.to_dict()
    assert data["flagged"] is True and data["other_cores"] == pytest.approx(0.5)
    assert Contention.from_dict(data) == result


def test_proc_stat_parsing_counts_busy_ticks_steal_and_cores():
    text = ("cpu  100 5 20 1000 50 1 2 7 0 0\ncpu0 50 2 10 500 25 0 1 3 0 0\n"
            "cpu1 50 3 10 500 25 1 1 4 0 0\nintr 1 2 3\n")
    assert contention._machine_ticks(text) == (100 + 5 + 20 + 1 + 2 + 7, 7, 2)


def test_process_stat_parsing_survives_spaces_and_parentheses_in_the_name():
    line = "42 (a (weird) name) R 1 42 42 0 -1 0 0 0 0 0 30 12 4 2 20 0 1 0 100"
    fields = contention._stat_fields(line)
    assert fields[1] == "1" and contention._process_ticks(fields) == 30 + 12 + 4 + 2


def test_wait_until_quiet_gives_up_within_its_bound(monkeypatch):
    samples = iter(_sample(10.0 * i, 0.0, 0.5 * ((i + 1) // 2)) for i in range(100))   # 20 cores' worth busy
    monkeypatch.setattr(contention, "read_cpu", lambda pid=None: next(samples))
    quiet, waited, last = wait_until_quiet(max_wait_s=2.0, window_s=0.5, sleep=lambda s: None)
    assert not quiet and last.flagged and waited <= 2.0


def test_wait_until_quiet_returns_once_quiet(monkeypatch):
    readings = iter([_sample(0, 0, 0.0), _sample(1.0, 0, 0.5), _sample(1.0, 0, 0.5), _sample(1.01, 0, 1.0)])
    monkeypatch.setattr(contention, "read_cpu", lambda pid=None: next(readings))
    quiet, _, last = wait_until_quiet(max_wait_s=60.0, window_s=0.5, sleep=lambda s: None)
    assert quiet and not last.flagged


# ------------------------------------------------------------------------------------ the GPU

FAKE_SMI = """#!/bin/sh
case "$*" in
  *query-gpu*) echo "1980, 2619, 1980, 2619, GPU-aaa" ;;
  *query-compute-apps*) printf 'GPU-aaa, 4242, python, 812\\nGPU-bbb, 5151, other, 100\\nGPU-aaa, %s, me, 300\\n' "$ME" ;;
esac
"""


def test_gpu_state_from_nvidia_smi_lists_other_processes_on_that_gpu(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("ME", str(os.getpid()))
    monkeypatch.setitem(sys.modules, "pynvml", None)       # NVML absent: nvidia-smi answers
    state = gpu_state(0, frozenset({os.getpid()}))
    assert state["sm_mhz"] == 1980.0 and state["max_mem_mhz"] == 2619.0 and state["source"] == "nvidia-smi"
    assert state["other_processes"] == [{"pid": 4242, "name": "python", "used_mib": 812.0}]
    with ContentionWatch(device="cuda:0") as watch:
        pass
    if watch.result is not None:
        assert watch.result.gpu_neighbours == 1 and watch.result.flagged


def test_no_driver_means_no_gpu_record(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)
    assert gpu_state(0) == {}


def test_waiting_for_a_quiet_machine_is_recorded_and_bounded(monkeypatch):
    from scaleprof.profile import timing

    monkeypatch.setattr(timing, "wait_until_quiet", lambda max_wait_s: (False, max_wait_s, None))
    stats = time_runner(_spin_ms, TimingSettings(warmup_iters=1, warmup_s=0.0, min_iters=3, min_time_s=0.0,
                                                 target_ci=None, max_time_s=0.2, wait_quiet_s=1.5),
                        batch=1, progress=False)
    if stats.contention is not None:                  # Linux
        assert stats.contention["waited_s"] == 1.5 and stats.contention["quiet_before"] is False
        assert "stayed busy through 1.5 s of waiting" in Contention.from_dict(stats.contention).summary()


def test_a_negative_wait_is_bad_input():
    from scaleprof.errors import BadInput
    from scaleprof.profile.timing import validate_settings

    with pytest.raises(BadInput, match="wait for a quiet machine"):
        validate_settings(TimingSettings(wait_quiet_s=-1.0))
