"""Building (and timing) through trtexec: command lines built purely (and tested), the version
banner, the build step, and its ``--exportTimes`` JSON. Running it is one subprocess call; nothing
here imports TensorRT.

Flags used (trtexec --help, TensorRT 10.x; TensorRT 11 removed --fp16 and makes --stronglyTyped
the default): --onnx, --saveEngine, --minShapes/--optShapes/--maxShapes (repeated after
--profile=i for several profiles), --memPoolSize=workspace:<MiB>M, --builderOptimizationLevel,
--profilingVerbosity=detailed, --timingCacheFile, --fp16 / --stronglyTyped, --skipInference,
--exportLayerInfo; for timing --loadEngine, --shapes, --useProfile, --useCudaGraph,
--noDataTransfers, --separateProfileRun, --warmUp (ms), --iterations, --duration (s),
--exportTimes, --exportProfile.

``--exportTimes`` JSON: one object per timed inference with ``startEnqMs``, ``endEnqMs``,
``startH2dMs``, ``endH2dMs``, ``startComputeMs``, ``endComputeMs``, ``startD2hMs``, ``endD2hMs``,
``h2dMs``, ``computeMs``, ``d2hMs``, ``latencyMs`` (= h2d + compute + d2h).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from scaleprof.engines.base import ShapePoint, ShapeRange
from scaleprof.engines.tensorrt.inspector import as_number, decode_json
from scaleprof.engines.tensorrt.options import PrecisionMode
from scaleprof.engines.tensorrt.profiles import is_dynamic, profile_dims
from scaleprof.errors import BadInput, EnvironmentProblem

_BANNER = re.compile(r"TensorRT\s+v(\d+)")


def parse_banner_version(text: str) -> str:
    """'&&&& RUNNING TensorRT.trtexec [TensorRT v100500] ...' -> '10.5.0' (vMMmmpp)."""
    m = _BANNER.search(text)
    if not m:
        raise EnvironmentProblem("could not read the TensorRT version from trtexec's output")
    n = int(m.group(1))
    return f"{n // 10000}.{n // 100 % 100}.{n % 100}"


def shape_spec(name: str, dims: Sequence[int]) -> str:
    """trtexec's 'name:1x3x224x224'; names holding ':' or ',' are wrapped in single quotes."""
    quoted = f"'{name}'" if any(c in name for c in ":,") else name
    return f"{quoted}:{'x'.join(str(int(d)) for d in dims)}"


def build_command(trtexec: str, onnx: str | Path, plan: str | Path, *,
                  inputs: Mapping[str, Sequence], profiles: Sequence[ShapeRange],
                  mode: PrecisionMode, trt_major: int, opt_level: int,
                  workspace_mib: int | None = None, timing_cache: str | Path | None = None,
                  layer_info: str | Path | None = None) -> list[str]:
    """The trtexec command line that builds what the Python API path would build.

    ``inputs``: network input name -> dims (-1 or a string for dynamic). A fully static input
    takes no shape flags. ``profiles`` are in profile-index order.
    """
    cmd = [str(trtexec), f"--onnx={onnx}", f"--saveEngine={plan}", "--skipInference",
           "--profilingVerbosity=detailed", f"--builderOptimizationLevel={int(opt_level)}"]
    dynamic = {n: d for n, d in inputs.items() if is_dynamic(d)}
    if dynamic:
        for index, rng in enumerate(profiles):
            if len(profiles) > 1:
                cmd.append(f"--profile={index}")
            dims = {n: profile_dims(d, rng, n) for n, d in dynamic.items()}
            for flag, k in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
                cmd.append(f"{flag}=" + ",".join(shape_spec(n, v[k]) for n, v in dims.items()))
    if workspace_mib:
        cmd.append(f"--memPoolSize=workspace:{int(workspace_mib)}M")
    if timing_cache:
        cmd.append(f"--timingCacheFile={timing_cache}")
    if mode.fp16_flag:
        if trt_major >= 11:
            raise BadInput("TensorRT 11's trtexec has no --fp16: export with --precision fp16")
        cmd.append("--fp16")
    if mode.strongly_typed and trt_major < 11:      # TensorRT 11: always strongly typed, no flag
        cmd.append("--stronglyTyped")
    if layer_info:
        cmd.append(f"--exportLayerInfo={layer_info}")
    return cmd


@dataclass(frozen=True)
class TimingRun:
    """What one trtexec timing run is asked for; the defaults mirror scaleprof's TimingSettings."""

    warmup_ms: int = 200
    iterations: int = 100
    duration_s: float = 3.0
    cuda_graph: bool = True


def profile_command(trtexec: str, plan: str | Path, *, input_name: str, shape: ShapePoint,
                    channels: int = 3, profile_index: int = 0, num_profiles: int = 1,
                    times: str | Path | None = None, profile: str | Path | None = None,
                    layer_info: str | Path | None = None, run: TimingRun = TimingRun()) -> list[str]:
    """trtexec timing of a built plan at one shape: end-to-end times in one run and, with
    ``--separateProfileRun``, per-layer times in a second run (per-layer profiling adds
    synchronisation, so the two are never measured together)."""
    cmd = [str(trtexec), f"--loadEngine={plan}",
           f"--shapes={shape_spec(input_name, shape.dims(channels))}",
           f"--warmUp={int(run.warmup_ms)}", f"--iterations={int(run.iterations)}",
           f"--duration={run.duration_s:g}", "--noDataTransfers"]
    if num_profiles > 1:
        cmd.append(f"--useProfile={int(profile_index)}")
    if run.cuda_graph:
        cmd.append("--useCudaGraph")
    if times:
        cmd.append(f"--exportTimes={times}")
    if profile:
        cmd += ["--separateProfileRun", f"--exportProfile={profile}"]
    if layer_info:
        cmd.append(f"--exportLayerInfo={layer_info}")
    return cmd


def find_trtexec(path: str | None) -> str:
    """The trtexec to run: ``path`` (a file or a name on PATH), else 'trtexec' on PATH."""
    candidate = path or "trtexec"
    found = shutil.which(candidate)
    if found:
        return found
    if path and Path(path).is_file():
        raise EnvironmentProblem(f"trtexec at {path} is not executable")
    raise EnvironmentProblem(f"trtexec not found ({candidate}): give its path with --trtexec, "
                             f"e.g. /usr/src/tensorrt/bin/trtexec in NVIDIA's TensorRT image")


_VERSIONS: dict[str, str] = {}


def trtexec_version(trtexec: str) -> str:
    """The TensorRT version of the trtexec at ``trtexec`` (its --help banner, read once per process)."""
    if trtexec not in _VERSIONS:
        try:
            proc = subprocess.run([trtexec, "--help"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise EnvironmentProblem(f"could not run {trtexec}: {err}") from None
        _VERSIONS[trtexec] = parse_banner_version(proc.stdout + proc.stderr)
    return _VERSIONS[trtexec]


def build_with_trtexec(trtexec: str, onnx_path: Path, plan_path: Path, *, inputs: Mapping[str, Sequence],
                       profiles: Sequence[ShapeRange], mode: PrecisionMode, trt_major: int, opt_level: int,
                       workspace_mib: int | None, timing_cache: Path | None, layer_info: Path) -> None:
    """Build ``plan_path`` (and the layer JSON ``layer_info``) with trtexec; its log goes beside the plan."""
    if timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
    cmd = build_command(trtexec, onnx_path, plan_path, inputs=inputs, profiles=profiles, mode=mode,
                        trt_major=trt_major, opt_level=opt_level, workspace_mib=workspace_mib,
                        timing_cache=timing_cache, layer_info=layer_info)
    run(cmd, log=plan_path.parent / "trtexec-build.log")
    if not plan_path.is_file():
        raise EnvironmentProblem(f"trtexec reported success but wrote no plan ({plan_path})")


def run(cmd: Sequence[str], log: Path | None = None, timeout_s: float | None = None) -> str:
    """Run trtexec; its whole output goes to ``log``; a failure is one line quoting its last error."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout_s, check=False)
    except FileNotFoundError:
        raise EnvironmentProblem(f"trtexec not found: {cmd[0]}") from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"trtexec ran past {timeout_s:g} s: {' '.join(cmd[:2])}") from None
    output = (proc.stdout or "") + (proc.stderr or "")
    if log is not None:
        Path(log).write_text(" ".join(cmd) + "\n\n" + output, encoding="utf-8")
    if proc.returncode != 0:
        raise EnvironmentProblem(f"trtexec failed (exit {proc.returncode}): {last_error(output)}"
                                 + (f"; full log in {log}" if log else ""))
    return output


def last_error(output: str) -> str:
    """The last '[E]' line of trtexec's log (or its last non-empty line), trimmed."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "[E]" in ln or "Error" in ln or "ERROR" in ln]
    pick = (errors or lines or ["no output"])[-1]
    return re.sub(r"^\[[^\]]*\]\s*(\[E\]\s*)?", "", pick)[:300]


# --- --exportTimes -------------------------------------------------------------------------

@dataclass(frozen=True)
class TimesTrace:
    compute_ms: tuple[float, ...]       # GPU compute time per inference (what scaleprof's runners time)
    latency_ms: tuple[float, ...]       # h2d + compute + d2h
    enqueue_ms: tuple[float, ...]
    wall_s: float                       # first enqueue to last completion

    @property
    def iterations(self) -> int:
        return len(self.compute_ms)


DURATIONS = ("computeMs", "latencyMs", "h2dMs", "d2hMs")      # the rest of a record's *Ms are timestamps


def parse_times(data) -> TimesTrace:
    """trtexec --exportTimes JSON (str/bytes or decoded list) -> TimesTrace."""
    data = decode_json(data, "trtexec times file")
    if not isinstance(data, list) or not data:
        raise BadInput("trtexec times JSON must be a non-empty list of per-inference records")
    compute, latency, enqueue, starts, ends = [], [], [], [], []
    for rec in data:
        if not isinstance(rec, Mapping) or "computeMs" not in rec:
            raise BadInput("trtexec times record without computeMs (is it --exportTimes output?)")
        ms = {k: as_number(v, f"trtexec times field {k}", minimum=0 if k in DURATIONS else None)
              for k, v in rec.items() if str(k).endswith("Ms")}
        if ms["computeMs"] <= 0 or ms.get("latencyMs", 1) <= 0:
            raise BadInput("trtexec times record with a computeMs or latencyMs of 0: not a measured inference")
        compute.append(ms["computeMs"])
        latency.append(ms.get("latencyMs", ms["computeMs"]))
        if "startEnqMs" in ms and "endEnqMs" in ms:
            enqueue.append(ms["endEnqMs"] - ms["startEnqMs"])
        starts.append(ms.get("startEnqMs", ms.get("startComputeMs", 0.0)))
        ends.append(ms.get("endD2hMs", ms.get("endComputeMs", 0.0)))
    wall_s = max(0.0, (max(ends) - min(starts)) / 1000.0)
    return TimesTrace(tuple(compute), tuple(latency), tuple(enqueue), wall_s)


def sniff(data) -> str:
    """Which trtexec export a decoded JSON document is: 'layer-info', 'profile' or 'times'."""
    if isinstance(data, Mapping) and "Layers" in data:
        return "layer-info"
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        if "count" in data[0] and "name" not in data[0]:
            return "profile"
        if "computeMs" in data[0] or "latencyMs" in data[0]:
            return "times"
    raise BadInput("not a trtexec export: expected --exportLayerInfo, --exportProfile or --exportTimes JSON")
