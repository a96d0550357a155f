"""`scaleprof build FILE.onnx --backend ort|torch|tensorrt|tensorrt-rtx`: an engine for a shape set,
from the cache when an intact one exists. Prints where the engine is and whether it came from the
cache.

A cache hit reads the ONNX file's facts from a memo in the cache (scaleprof.engines.onnx_facts) and
hashes its bytes: neither onnx nor torch is imported. Progress ("building ...") is a status line on
a terminal that is cleared when the command ends, so an error stays the one line on stderr."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from scaleprof.tools.args import add_engine_arguments, add_output_arguments, build_spec

# TensorRT's options for --help, kept here so building the parser imports no engine code
# (tests/engines/test_engines_build_cli.py checks that they are the options the backend takes).
TRT_OPTIONS = (
    ("profiles", "per-shape|per-resolution|single: how shapes become optimisation profiles"),
    ("opt_level", "0..5: the builder optimisation level (default 3)"),
    ("workspace_mib", "N: the builder's workspace limit"),
    ("timing_cache", "PATH (TensorRT 10/11)"),
    ("trtexec", "PATH: build and time through trtexec (TensorRT 10/11)"),
    ("compute_capabilities", "default|current|8.6,8.9,12.0: the GPUs a TensorRT-RTX plan targets "
                             "(the manifest names those built and dropped)"),
    ("determinism", "check: build twice and record whether the plans are byte-identical"),
    ("gpu_memory_gib", "N: refuse a plan whose weights plus any profile's activations exceed N GiB"),
    ("runtime_cache", "PATH: TensorRT-RTX's runtime cache of the kernels it compiles on the GPU, read and "
                      "written where the engine runs (needs the GPU)"),
)
NAME = "build"
HELP = "build (or fetch from the cache) a runtime engine for an ONNX file"


def add_arguments(parser) -> None:
    parser.add_argument("onnx", metavar="FILE.onnx", help="the ONNX file (from `scaleprof export`, or any image model)")
    add_engine_arguments(parser)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend option, repeatable: ort ep=cuda|tensorrt, opt_level=basic|extended|all; "
                             "torch channels_last=true, compile=true|max-autotune, cuda_graph=false; "
                             "tensorrt and tensorrt-rtx: " + "; ".join(f"{k}={v}" for k, v in TRT_OPTIONS))
    parser.add_argument("--trtexec", metavar="PATH",
                        help="tensorrt: build through this trtexec (same as --option trtexec=PATH)")
    shapes = parser.add_argument_group("shape set")
    shapes.add_argument("--batch", help="batch sizes, e.g. 1,8,32 (default 1)")
    shapes.add_argument("--resolution", help="square resolutions, e.g. 224,256 (default: the model's own)")
    shapes.add_argument("--shapes", help="trtexec spelling: input:1x3x224x224,input:8x3x224x224")
    shapes.add_argument("--minShapes", "--min-shapes", dest="min_shapes", help="shape range minimum (input:1x3x224x224)")
    shapes.add_argument("--optShapes", "--opt-shapes", dest="opt_shapes", help="shape range optimum (default: the maximum)")
    shapes.add_argument("--maxShapes", "--max-shapes", dest="max_shapes", help="shape range maximum (input:32x3x256x256)")
    add_output_arguments(parser, out="output directory", cache_dir="engine cache directory (default OUT/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache holds the engine")


def parse_option(text: str):
    from scaleprof.errors import BadInput

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"option {text!r} is not KEY=VALUE")
    value = value.strip()
    lowered = value.lower()
    if lowered in ("true", "yes", "on", "1"):
        return key.strip(), True
    if lowered in ("false", "no", "off", "0"):
        return key.strip(), False
    return key.strip(), int(value) if value.isdigit() else value


def run(args) -> int:
    from scaleprof.engines.cache import build_engine, default_cache_dir, onnx_sha256
    from scaleprof.engines.onnx_facts import cached_facts, read_facts, remember_facts
    from scaleprof.engines.shapes import shape_set
    from scaleprof.errors import BadInput
    from scaleprof.export.rebuild import rebuild_model

    onnx_path = Path(args.onnx)
    if not onnx_path.is_file():
        raise BadInput(f"{onnx_path}: no such ONNX file")
    for flag in ("batch", "resolution", "shapes", "min_shapes", "opt_shapes", "max_shapes"):
        if getattr(args, flag) is not None and not getattr(args, flag).strip():
            raise BadInput(f"--{flag.replace('_', '-')} is empty: give a value or leave the option out")
    if args.trtexec and args.backend != "tensorrt":
        raise BadInput("--trtexec builds TensorRT engines: use it with --backend tensorrt")
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(args.out)
    digest = onnx_sha256(onnx_path)
    memo = cached_facts(cache_dir, digest)
    facts = memo or read_facts(onnx_path)
    points, ranges = shape_set(
        shapes=args.shapes, batch=args.batch, resolution=args.resolution, min_shapes=args.min_shapes,
        opt_shapes=args.opt_shapes, max_shapes=args.max_shapes, input_name=facts.input,
        default_resolution=facts.resolution)
    facts.check_resolutions(points, ranges)
    options = [parse_option(o) for o in args.option] + ([("trtexec", args.trtexec)] if args.trtexec else [])
    spec = build_spec(args, points, ranges, options, facts.quantized)
    status = StatusLine(enabled=not args.json and sys.stderr.isatty())
    try:
        result = build_engine(onnx_path, spec, cache_dir, force=args.force, progress=status,
                              model_source=rebuild_model, digest=digest)
    finally:
        status.clear()
    if memo is None:
        remember_facts(cache_dir, digest, facts)
    _print(result, args.json)
    return 0


class StatusLine:
    """Progress on a terminal's last line, cleared when the command ends (never left above an error)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.shown = False

    def __call__(self, message: str) -> None:
        if self.enabled:
            sys.stderr.write(f"\r\033[K{message}")
            sys.stderr.flush()
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _print(result, as_json: bool) -> None:
    from scaleprof.engines.shapes import describe

    m = result.engine.manifest
    if as_json:
        print(json.dumps({
            "engine": str(result.directory), "cached": result.cached, "key": result.key,
            "seconds": round(result.seconds, 4), "build_seconds": m.build_seconds, "replaced": result.replaced,
            "backend": m.backend, "backend_version": m.backend_version, "device": m.device,
            "device_name": m.device_name, "precision": m.precision, "threads": m.threads,
            "shapes": [str(p) for p in m.shapes],
            "ranges": [{"min": str(r.min), "opt": str(r.opt), "max": str(r.max)} for r in m.ranges],
            "artifact": str(result.engine.artifact_path),
        }, indent=2))
    else:
        # build_seconds (the backend's build, what `inspect` shows) and the command's whole wall time
        how = (f"from the cache ({result.seconds * 1e3:.0f} ms)" if result.cached
               else f"built in {m.build_seconds:.2f} s ({result.seconds:.2f} s with hashing and checks)")
        print(f"engine: {result.directory}  {how}")
        if result.replaced:
            print(f"  replaced a cached engine that was unusable: {result.replaced}")
        print(f"  {m.backend} {m.backend_version} on {m.device} ({m.device_name}), {m.precision}, "
              f"shapes {describe(m.shapes, m.ranges)}")
