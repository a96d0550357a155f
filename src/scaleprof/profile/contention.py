"""Whether a neighbour disturbed a timing: the CPU time other processes took while it ran, from the
kernel's own accounting (all of /proc/stat, minus this process and its children from /proc/PID/stat),
the load average, and on a GPU its clocks and the other processes the driver lists.

The CI-based stopping rule cannot see a neighbour: a busy machine gives a stable, wrong median. Here
the machine tells: on a quiet machine other processes take a few percent of its CPU time while a
point is timed; next to a CPU hog they take a third or more.

time_runner watches its timed iterations itself (LatencyStats.contention, a Contention as a dict):

    stats = time_engine(engine, shape, settings)
    if stats.contended:
        print(Contention.from_dict(stats.contention).warning())

and anything else can be watched the same way:

    with ContentionWatch(device="cuda:0") as watch:
        ...
    watch.result        # a Contention, or None where /proc cannot be read
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field

from scaleprof.engines.devices import device_index

BUSY_SHARE = 0.10       # flag when other processes took more than this share of the machine's CPU time
GPU_QUERY_S = 10        # cap on one nvidia-smi call
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)   # user nice system irq softirq steal (guest time is inside user)
_STEAL_FIELD = 7


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU seconds at one instant: of every process (all cores) and of this process tree."""

    busy_s: float
    steal_s: float               # time the hypervisor gave to other guests: a neighbour too
    own_s: float
    cores: int
    at: float                    # time.monotonic()
    load1: float | None          # 1-minute load average


@dataclass(frozen=True)
class Contention:
    """What other processes took while a measurement ran."""

    wall_s: float
    cores: int
    other_cpu_s: float           # CPU seconds of other processes (summed over cores, steal included)
    own_cpu_s: float             # CPU seconds of this process and its children
    steal_s: float
    load_start: float | None     # 1-minute load average before and after
    load_end: float | None
    threshold: float = BUSY_SHARE
    gpu: dict = field(default_factory=dict)   # clocks and other processes on the GPU, where the driver tells
    waited_s: float | None = None             # seconds spent waiting for a quiet machine first (None: no wait)
    quiet_before: bool | None = None          # whether that wait ended with a quiet machine

    @property
    def other_cores(self) -> float:
        """How many cores other processes kept busy, on average."""
        return self.other_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def other_share(self) -> float:
        """Share of the machine's CPU time that other processes took."""
        return self.other_cores / self.cores if self.cores else 0.0

    @property
    def gpu_neighbours(self) -> int:
        return len(self.gpu.get("other_processes") or ())

    @property
    def flagged(self) -> bool:
        return self.other_share > self.threshold or self.gpu_neighbours > 0

    def summary(self) -> str:
        load = f", load {self.load_end:.2f}" if self.load_end is not None else ""
        text = (f"other processes took {self.other_cores:.2f} of {self.cores} cores "
                f"({self.other_share:.0%}) over {self.wall_s:.2f} s{load}")
        if self.gpu_neighbours:
            text += f"; {self.gpu_neighbours} other process(es) on the GPU"
        if self.waited_s is not None:
            text += (f"; after waiting {self.waited_s:.1f} s for a quiet machine" if self.quiet_before else
                     f"; the machine stayed busy through {self.waited_s:.1f} s of waiting")
        return text

    def warning(self) -> str:
        """One line for the terminal."""
        return f"warning: measured under contention: {self.summary()}; the figures may be off"

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(other_cores=self.other_cores, other_share=self.other_share, flagged=self.flagged)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Contention":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})


# ------------------------------------------------------------------------------------ the kernel's accounting

def _ticks_per_s() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


def _machine_ticks(text: str) -> tuple[int, int, int]:
    """(busy, steal, cores) from the text of /proc/stat."""
    busy = steal = cores = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if name == "cpu":
            values = [int(v) for v in rest.split()]
            busy = sum(values[i] for i in _BUSY_FIELDS if i < len(values))
            steal = values[_STEAL_FIELD] if len(values) > _STEAL_FIELD else 0
        elif name.startswith("cpu") and name[3:].isdigit():
            cores += 1
    return busy, steal, cores


def _stat_fields(text: str) -> list[str]:
    """Fields of a /proc/PID/stat line after the command name (which may hold spaces and parentheses)."""
    return text[text.rindex(")") + 2:].split()


def _process_ticks(fields: list[str]) -> int:
    """utime + stime + cutime + cstime: the process, its threads and the children it has waited for."""
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def _own_ticks(pid: int) -> int:
    """CPU ticks of ``pid`` and of its live descendants (an engine that times in a child process,
    such as trtexec, is this measurement, not a neighbour)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = _stat_fields(f.read())
        except (OSError, ValueError, IndexError):
            continue   # gone meanwhile
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = _process_ticks(fields)
    total = 0
    for child, start in ticks.items():
        node, hops = child, 0
        while node not in (pid, 0, 1) and node in parents and hops < 64:
            node, hops = parents[node], hops + 1
        if node == pid:
            total += start
    return total


def read_cpu(pid: int | None = None) -> CpuSample | None:
    """The kernel's cumulative CPU accounting now; None where /proc cannot be read (not Linux)."""
    try:
        with open("/proc/stat") as f:
            busy, steal, cores = _machine_ticks(f.read())
        own = _own_ticks(os.getpid() if pid is None else pid)
    except (OSError, ValueError):
        return None
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        load1 = None
    hz = _ticks_per_s()
    return CpuSample(busy_s=busy / hz, steal_s=steal / hz, own_s=own / hz, cores=cores or (os.cpu_count() or 1),
                     at=time.monotonic(), load1=load1)


def between(start: CpuSample, end: CpuSample, threshold: float = BUSY_SHARE, gpu: dict | None = None) -> Contention:
    """What other processes took from ``start`` to ``end``."""
    own = max(0.0, end.own_s - start.own_s)
    wall = max(0.0, end.at - start.at)
    # clock-tick rounding can make the difference a little negative or above what the cores hold
    other = min(max(0.0, end.busy_s - start.busy_s - own), wall * end.cores)
    return Contention(wall_s=wall, cores=end.cores, other_cpu_s=other, own_cpu_s=own,
                      steal_s=max(0.0, end.steal_s - start.steal_s), load_start=start.load1,
                      load_end=end.load1, threshold=threshold, gpu=gpu or {})


# ------------------------------------------------------------------------------------ the GPU

def gpu_state(index: int = 0, own_pids: frozenset[int] = frozenset()) -> dict:
    """Clocks (MHz) and the other compute processes of GPU ``index``, from NVML where the pynvml module
    is installed, else from nvidia-smi; {} where neither answers. Processes in ``own_pids`` are ours."""
    state = _nvml_state(index)
    if state is None:
        state = _smi_state(index)
    if state is None:
        return {}
    state["other_processes"] = [p for p in state["other_processes"] if p["pid"] not in own_pids]
    return state


def _nvml_state(index: int) -> dict | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver: pynvml's NVMLError has no common base worth importing
        return None
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        sm, mem = pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM
        state = {"sm_mhz": float(pynvml.nvmlDeviceGetClockInfo(handle, sm)),
                 "mem_mhz": float(pynvml.nvmlDeviceGetClockInfo(handle, mem)),
                 "max_sm_mhz": float(pynvml.nvmlDeviceGetMaxClockInfo(handle, sm)),
                 "max_mem_mhz": float(pynvml.nvmlDeviceGetMaxClockInfo(handle, mem)),
                 "source": "nvml"}
        running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        state["other_processes"] = [{"pid": int(p.pid), "used_mib": _mib(p.usedGpuMemory)} for p in running]
        return state
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _mib(used_bytes) -> float | None:
    return round(used_bytes / 2**20, 1) if isinstance(used_bytes, int) else None


def _smi(args: list[str]) -> list[list[str]] | None:
    """Rows of an nvidia-smi CSV query, or None when it is missing or fails."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", *args, "--format=csv,noheader,nounits"], capture_output=True,
                             text=True, timeout=GPU_QUERY_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    return [[v.strip() for v in line.split(",")] for line in out.stdout.splitlines() if line.strip()]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _smi_state(index: int) -> dict | None:
    names = ("sm_mhz", "mem_mhz", "max_sm_mhz", "max_mem_mhz")
    rows = _smi([f"--id={index}", "--query-gpu=clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,uuid"])
    if not rows or len(rows[0]) != len(names) + 1:
        return None
    state = {k: _number(v) for k, v in zip(names, rows[0])}
    state["source"] = "nvidia-smi"
    uuid = rows[0][-1]
    apps = _smi(["--query-compute-apps=gpu_uuid,pid,process_name,used_memory"]) or []
    state["other_processes"] = [{"pid": int(pid), "name": name, "used_mib": _number(used)}
                                for gpu, pid, name, used in (r for r in apps if len(r) == 4)
                                if gpu == uuid and pid.isdigit()]
    return state


# ------------------------------------------------------------------------------------ watching and waiting

class ContentionWatch:
    """Context manager: ``result`` (a Contention, or None where /proc cannot be read) once the block ends.
    On a CUDA device the GPU's state is read after the block (clocks while still warm), and the other
    processes are those listed before or after it."""

    def __init__(self, device: str = "cpu", threshold: float = BUSY_SHARE):
        self.gpu_index = device_index(device) if device.startswith("cuda") else None
        self.threshold = threshold
        self.result: Contention | None = None
        self._start: CpuSample | None = None
        self._gpu_before: dict = {}

    def __enter__(self) -> "ContentionWatch":
        if self.gpu_index is not None:
            self._gpu_before = gpu_state(self.gpu_index, frozenset({os.getpid()}))
        self._start = read_cpu()
        return self

    def __exit__(self, *exc) -> None:
        end = read_cpu()
        gpu = {}
        if self.gpu_index is not None:
            gpu = gpu_state(self.gpu_index, frozenset({os.getpid()}))
            seen = {p["pid"]: p for p in self._gpu_before.get("other_processes", []) + gpu.get("other_processes", [])}
            if gpu or seen:
                gpu["other_processes"] = list(seen.values())
        if self._start is not None and end is not None:
            self.result = between(self._start, end, self.threshold, gpu)


def wait_until_quiet(max_wait_s: float, threshold: float = BUSY_SHARE, window_s: float = 0.5,
                     sleep=time.sleep) -> tuple[bool, float, Contention | None]:
    """Look at the machine in windows of ``window_s`` (this process idle) until other processes take at
    most ``threshold`` of it, or ``max_wait_s`` has passed. (quiet, seconds waited, the last window);
    quiet is True, at once, where /proc cannot be read."""
    first_at = None
    while True:
        before = read_cpu()
        if before is None:
            return True, 0.0, None
        first_at = before.at if first_at is None else first_at
        sleep(window_s)
        after = read_cpu()
        if after is None:
            return True, before.at - first_at, None
        last = between(before, after, threshold)
        waited = after.at - first_at
        if not last.flagged:
            return True, waited, last
        if waited + window_s > max_wait_s:
            return False, waited, last
