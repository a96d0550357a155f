"""Argument groups the subcommands share, and what each group does with its values.

A subcommand module adds the groups it needs in ``add_arguments`` and reads them back through the
helpers below, so an option has one spelling, one default and one check wherever it appears. This
is the only module of scaleprof.tools that the subcommand modules import.

    model selection   MODEL --strategy --alpha --scale --phi    scale, count, export
    one input shape   --batch --resolution                      count, export, profile, inspect, ingest
    engine            --backend --device --threads --precision  build, profile (--precision also export)
    timing            --warmup --min-iters --min-time ...       profile (defaults: TimingSettings)
    output            -o/--out --cache-dir --json               most
    calibration       --target --calibration --any-environment --precision   predict, recommend
    sweep run         --force --no-progress --wait-quiet --remeasure-noisy   sweep, demo
                      --jobs --ray

Building the parser imports no stage: everything heavier than argparse is imported when a value is
read (the timing defaults too, see TimingOption).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

from scaleprof.core.onnx_file import PRECISIONS

DEFAULT_OUT = "scaleprof-out"


# ------------------------------------------------------------------------------ model selection

def add_model_arguments(parser, scale_required: bool = False,
                        model_help: str = "base model, a timm name (see `scaleprof models`)") -> None:
    group = parser.add_argument_group("model selection")
    group.add_argument("model", metavar="MODEL", help=model_help)
    group.add_argument("--strategy", required=scale_required,
                       help="scaling strategy: d, w, r, dw, dr, wr, dwr, dWr, en, or a pycls spec like d1_w8_g8_r1")
    group.add_argument("--alpha", type=float, help="dWr's alpha in (0, 1] (default 0.8)")
    group.add_argument("--scale", type=float, metavar="F", help="flops factor s (1 = the base model)")
    group.add_argument("--phi", type=float, help="for --strategy en: EfficientNet's phi (s = 2^phi) instead of --scale; "
                       "EfficientDet: an integer, D(k) becomes D(k + phi) by the paper's rule")


def selected_spec(args):
    """(spec, base_spec) from MODEL/--strategy/--alpha/--scale/--phi; BadInput for inconsistent flags,
    all of them found before the model is built or searched."""
    from scaleprof.errors import BadInput
    from scaleprof.models import base_spec, family_of, parse_strategy, scale_spec
    from scaleprof.models.strategies import check_scale, scale_of_phi

    family_of(args.model)                       # an unknown model first
    scale = args.scale
    if args.phi is not None:
        if args.strategy != "en":
            raise BadInput("--phi applies only to --strategy en (use --scale for other strategies)")
        if scale is not None:
            raise BadInput("give either --scale or --phi, not both")
        scale = scale_of_phi(args.phi)
    if args.strategy is None:
        if scale is not None or args.alpha is not None:
            raise BadInput("--scale/--alpha need a --strategy (e.g. --strategy dWr --scale 4)")
        base = base_spec(args.model)
        return base, base
    parse_strategy(args.strategy, args.alpha)  # unknown strategy / bad alpha first
    if scale is None:
        raise BadInput(f"--strategy {args.strategy} needs --scale F (a flops factor > 0)")
    check_scale(scale)
    base = base_spec(args.model)
    with still_working(f"searching {base.model} {args.strategy} x{scale:g}", say(args)):
        return scale_spec(base.model, args.strategy, scale, args.alpha), base


@contextlib.contextmanager
def still_working(label: str, progress, every_s: float = 15.0):
    """While the body runs (searching or counting a huge network takes minutes), a line through ``progress``
    every ``every_s`` seconds, so that no command is silent for long; nothing for a quick body."""
    done, start = threading.Event(), time.monotonic()

    def tell():
        while not done.wait(every_s):
            progress(f"{label}: still working ({time.monotonic() - start:.0f} s)")
    watcher = threading.Thread(target=tell, daemon=True) if progress else None
    if watcher:
        watcher.start()
    try:
        yield
    finally:
        done.set()
        if watcher:
            watcher.join()     # a line it was already writing comes before the command goes on, never after


def spec_fields(spec) -> dict:
    """The spec's identity and achieved multipliers: the first keys of `scale` and `count` JSON."""
    return {"model": spec.model, "family": spec.family, "strategy": spec.strategy, "alpha": spec.alpha,
            "scale": spec.scale, "depth_multiplier": spec.depth_multiplier, "width_multiplier": spec.width_multiplier,
            "group_multiplier": spec.group_multiplier}


def fmt_int(n: int) -> str:
    """A count for people: 1.234G, 5.600M, 12.000K, 999."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3f}{unit}"
    return str(n)


# ------------------------------------------------------------------------------ one input shape

def add_shape_arguments(parser, batch: str | None = None, resolution: str | None = None,
                        batch_default: int | None = 1) -> None:
    """--batch B (default ``batch_default``; None tells whether it was given) and --resolution R
    (default: the model's or engine's own), each with the help text given (left out when None)."""
    group = parser.add_argument_group("input shape")
    if batch is not None:
        group.add_argument("--batch", type=int, default=batch_default, metavar="B", help=batch)
    if resolution is not None:
        group.add_argument("--resolution", type=int, metavar="R", help=resolution)


def check_shape_arguments(args, model: str = "the model") -> None:
    """BadInput for a --batch or --resolution of the shape group that no network here takes
    (scaleprof.core.limits: batch 1..4096, resolution 32..4096)."""
    from scaleprof.core.limits import check_batch, check_resolution

    if getattr(args, "batch", None) is not None:
        check_batch(args.batch)
    if getattr(args, "resolution", None) is not None:
        check_resolution(args.resolution, model)


def default_resolution(onnx_path) -> int:
    """An ONNX file's own resolution: its scaleprof spec's, else the input's fixed height, else 224."""
    from scaleprof.core.onnx_file import META_SPEC, image_input, load_model, metadata_props

    model = load_model(onnx_path, load_weights=False)
    spec = metadata_props(model)[1].get(META_SPEC)
    if isinstance(spec, dict) and isinstance(spec.get("resolution"), int) and spec["resolution"] > 0:
        return spec["resolution"]
    _, dims = image_input(model, onnx_path)
    return dims[2] if isinstance(dims[2], int) and dims[2] > 0 else 224


# ------------------------------------------------------------------------------ engine

ENGINE_OPTIONS = ("backend", "device", "threads", "precision")
DEFAULT_BACKEND = "ort"


def add_engine_arguments(parser, description: str | None = None) -> None:
    """--backend --device --threads --precision; their defaults are filled in by build_spec, so
    that engine_arguments_given can tell which were given."""
    group = parser.add_argument_group("engine", description)
    group.add_argument("--backend",
                       help=f"{DEFAULT_BACKEND} (ONNX Runtime, default), torch (PyTorch), tensorrt or tensorrt-rtx")
    group.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda for tensorrt and tensorrt-rtx, else cpu)")
    group.add_argument("--threads", type=int, help="intra-op threads on the CPU (default: the runtime's)")
    add_precision_argument(group, "the engine's precision; an int8/fp8 QDQ file builds in its own", default=None)


def engine_arguments_given(args) -> list[str]:
    """The engine group's options given on the command line, spelled as options."""
    return [f"--{name}" for name in ENGINE_OPTIONS if getattr(args, name, None) is not None]


def add_precision_argument(parser, help: str, default: str | None = PRECISIONS[0]) -> None:
    parser.add_argument("--precision", default=default, choices=PRECISIONS,
                        help=f"{help} (default {PRECISIONS[0]})")


def add_calibration_arguments(parser) -> None:
    """The calibrated target a prediction is for (predict, recommend), its batch and precision."""
    group = parser.add_argument_group("calibration")
    group.add_argument("--target", required=True, help="a calibrated target (see `scaleprof calibrate`)")
    group.add_argument("--calibration", metavar="PATH",
                       help="a calibration file or a sweep directory (default: the per-user calibration store)")
    group.add_argument("--any-environment", action="store_true",
                       help="accept a calibration measured in another environment than this machine's")
    add_precision_argument(group, "precision of the predicted engine")


def default_device(backend: str) -> str:
    """The device an engine is built for when --device is not given: TensorRT engines run on CUDA only."""
    from scaleprof.engines.backends import ALIASES, GPU_ONLY

    return "cuda" if ALIASES.get(backend, backend) in GPU_ONLY else "cpu"


def build_spec(args, shapes, ranges=(), options=(), file_precision: str | None = None):
    """The BuildSpec the engine group's values ask for, for ``shapes`` (and TensorRT ``ranges``);
    without --precision, a QDQ file builds in its own type (``file_precision``: int8 or fp8), any
    other in fp32."""
    from scaleprof.core.limits import check_threads
    from scaleprof.engines.base import BuildSpec

    backend = args.backend or DEFAULT_BACKEND
    return BuildSpec(backend=backend, device=args.device or default_device(backend),
                     precision=args.precision or file_precision or PRECISIONS[0], threads=check_threads(args.threads, "--threads"),
                     shapes=tuple(shapes), ranges=tuple(ranges), options=tuple(sorted(options)))


# ------------------------------------------------------------------------------ timing

class TimingOption(argparse.Action):
    """An option storing one TimingSettings field. Its default, and the defaults its help names
    ("{field}" in the text), are read from TimingSettings when argparse first needs them (parsing
    that subcommand, or its --help): the defaults live in one place, and building the parser does
    not import the profile stage."""

    def __init__(self, option_strings, dest, text: str, **kwargs):
        self.text = text
        super().__init__(option_strings, dest, **kwargs)

    default = property(lambda self: getattr(_timing_defaults(), self.dest), lambda self, value: None)
    help = property(lambda self: self.text.format(**vars(_timing_defaults())), lambda self, value: None)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


TIMING_OPTIONS = (   # option, TimingSettings field (the option's dest), type, metavar, help
    ("--warmup", "warmup_iters", int, "N", "warm-up iterations (default {warmup_iters}, and at least {warmup_s:g} s)"),
    ("--min-iters", "min_iters", int, "N", "minimum timed iterations (default {min_iters})"),
    ("--min-time", "min_time_s", float, "S", "minimum seconds of timed iterations (default {min_time_s:g})"),
    ("--max-time", "max_time_s", float, "S", "cap on seconds of timed iterations (default {max_time_s:g})"),
    ("--target-ci", "target_ci", float, "F",
     "stop once the 95%% CI of the median is within this fraction of it (default {target_ci:g}; 0: off)"),
    ("--iterations", "layer_iters", int, "N", "iterations of the layer-profiling run (default {layer_iters})"),
    ("--wait-quiet", "wait_quiet_s", float, "S",
     "before timing, wait up to S seconds for other processes to leave the machine quiet (default {wait_quiet_s:g})"),
)


def add_timing_arguments(parser) -> None:
    group = parser.add_argument_group("timing")
    for option, setting, kind, metavar, text in TIMING_OPTIONS:
        group.add_argument(option, dest=setting, action=TimingOption, type=kind, metavar=metavar, text=text)


def timing_settings(args):
    """TimingSettings from the timing group's values, checked (BadInput names the bad one)."""
    from scaleprof.profile.timing import validate_settings

    settings = replace(_timing_defaults(), **{setting: getattr(args, setting) for _, setting, *_ in TIMING_OPTIONS})
    validate_settings(settings)
    return settings


def _timing_defaults():
    from scaleprof.profile.types import TimingSettings

    return TimingSettings()


# ------------------------------------------------------------------------------ output

def add_output_arguments(parser, out: str | None = None, cache_dir: str | None = None, json: bool = True) -> None:
    """-o/--out DIR (with the help given; default DEFAULT_OUT), --cache-dir DIR and --json."""
    group = parser.add_argument_group("output")
    if out is not None:
        group.add_argument("-o", "--out", default=DEFAULT_OUT, metavar="DIR", help=f"{out} (default {DEFAULT_OUT})")
    if cache_dir is not None:
        group.add_argument("--cache-dir", metavar="DIR", help=cache_dir)
    if json:
        group.add_argument("--json", action="store_true", help="print one JSON object")


def say(args):
    """The progress callback a stage takes: print to stderr, or None (silent) with --json."""
    if getattr(args, "json", False):
        return None
    return lambda message: print(message, file=sys.stderr)


# ------------------------------------------------------------------------------ sweep run

def add_sweep_run_arguments(parser) -> None:
    group = parser.add_argument_group("sweep run")
    group.add_argument("--force", action="store_true", help="re-measure points already in the store")
    group.add_argument("--no-progress", action="store_true", help="one line per point instead of a progress bar")
    group.add_argument("--wait-quiet", type=float, metavar="S",
                       help="before each round of timing, wait up to S seconds for other processes to leave the "
                            "machine quiet (default: the config's timing.wait_quiet_s)")
    group.add_argument("--remeasure-noisy", action="store_true",
                       help="time again the stored points that could not be measured faithfully (contended)")
    group.add_argument("--jobs", type=int, default=1, metavar="N",
                       help="scale, count, export and build in N worker processes; measurement stays serial "
                            "(on a CPU target it starts once all is prepared); default 1")
    group.add_argument("--ray", metavar="auto|ADDRESS",
                       help="run each target on the Ray hosts that declare the resource target:NAME; "
                            "auto: the cluster started on this machine, or one of this machine alone")


def sweep_and_report(config, out: Path, args, report: bool = True) -> int:
    """Run (or resume) ``config`` into ``out`` as the sweep-run group asks, say what happened and
    write the report; exit code 1 when a point failed."""
    from scaleprof.sweep.executors import make_executor
    from scaleprof.sweep.runner import run_sweep

    config = with_wait_quiet(config, args.wait_quiet)
    ray = getattr(args, "ray", None)
    executor = make_executor(getattr(args, "jobs", 1), ray)
    result = run_sweep(config, out, force=args.force, progress=False if args.no_progress else None,
                       remeasure_noisy=args.remeasure_noisy, executor=executor)
    # on Ray, measurement on several hosts at once can exceed the driver's wall time
    overhead = f", {100 * result.overhead_share:.0f}% of it outside measurement" if result.measured and not ray else ""
    pending = f", {result.pending} pending (no host serves their target)" if result.pending else ""
    print(f"sweep {config.name}: {result.measured} measured ({result.reused} shared with s=1 of another "
          f"strategy), {result.skipped} already in the store, {result.failed} failed{pending}, "
          f"in {result.seconds:.1f} s{overhead}")
    for label, error in result.failures[:10]:
        print(f"  failed: {label}: {error}")
    if len(result.failures) > 10:
        print(f"  ... and {len(result.failures) - 10} more (see the report)")
    if report:
        from scaleprof.report import write_report

        print_report_paths(write_report(out))
    return 1 if result.failed else 0


def with_wait_quiet(config, seconds: float | None):
    """``config`` with its timing's wait_quiet_s set to ``seconds`` (unchanged for None)."""
    if seconds is None:
        return config
    from scaleprof.errors import BadInput
    from scaleprof.profile.timing import MAX_SECONDS

    if not math.isfinite(seconds) or seconds < 0:
        raise BadInput(f"--wait-quiet must be zero or more seconds, got {seconds:g}")
    if seconds > MAX_SECONDS:
        raise BadInput(f"--wait-quiet {seconds:g} s is above the most one timing may wait ({MAX_SECONDS:g} s)")

    return replace(config, timing=replace(config.timing, wait_quiet_s=float(seconds)))


def print_report_paths(paths) -> None:
    """The report's verdicts and where its files are (a ReportPaths); on stderr, the store rows it
    left out."""
    from scaleprof.core.text import single_line

    for problem in paths.problems:
        print(f"note: {single_line(problem)}", file=sys.stderr)
    for verdict in paths.verdicts:
        print(verdict)
    print(f"report: {paths.html}")
    print(f"        {paths.markdown}, {paths.csv}, {paths.json}")
    if paths.unfaithful:
        print(paths.unfaithful)         # last: what the figures above cannot be trusted for
