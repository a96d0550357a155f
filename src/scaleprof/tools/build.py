"""`scaleprof build FILE.onnx --backend ort|torch|tensorrt`: an engine for a shape set, from the cache
when an intact one exists. Prints where the engine is and whether it came from the cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAME = "build"
HELP = "build (or fetch from the cache) a runtime engine for an ONNX file"


def add_arguments(parser) -> None:
    parser.add_argument("onnx", metavar="FILE.onnx", help="the ONNX file (from `scaleprof export`, or any image model)")
    parser.add_argument("--backend", default="ort", help="ort (ONNX Runtime, default), torch (PyTorch) or tensorrt")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda for tensorrt, else cpu)")
    parser.add_argument("--batch", help="batch sizes, e.g. 1,8,32 (default 1)")
    parser.add_argument("--resolution", help="square resolutions, e.g. 224,256 (default: the model's own)")
    parser.add_argument("--shapes", help="trtexec spelling: input:1x3x224x224,input:8x3x224x224")
    parser.add_argument("--minShapes", "--min-shapes", dest="min_shapes", help="shape range minimum (input:1x3x224x224)")
    parser.add_argument("--optShapes", "--opt-shapes", dest="opt_shapes", help="shape range optimum (default: the maximum)")
    parser.add_argument("--maxShapes", "--max-shapes", dest="max_shapes", help="shape range maximum (input:32x3x256x256)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16"))
    parser.add_argument("--threads", type=int, help="intra-op threads on the CPU (default: the runtime's)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend option, repeatable: ort ep=cuda|tensorrt, opt_level=basic|extended|all; "
                             "torch channels_last=true, compile=true|max-autotune, cuda_graph=false")
    parser.add_argument("--trtexec", metavar="PATH",
                        help="tensorrt: build through this trtexec (same as --option trtexec=PATH)")
    parser.add_argument("-o", "--out", default="scaleprof-out", help="output directory (default scaleprof-out)")
    parser.add_argument("--cache-dir", help="engine cache directory (default OUT/engines)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache holds the engine")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


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


def default_resolution(onnx_path: Path) -> int:
    """The model's own resolution: its scaleprof spec, else the input's fixed height, else 224."""
    from scaleprof.export.onnx_io import image_input, load_model, metadata_from_model

    model = load_model(onnx_path, load_weights=False)
    meta = metadata_from_model(model)
    if meta.spec is not None:
        return int(meta.spec.resolution)
    _, dims = image_input(model, onnx_path)
    return dims[2] if isinstance(dims[2], int) and dims[2] > 0 else 224


def run(args) -> int:
    from scaleprof.engines.base import BuildSpec
    from scaleprof.engines.cache import build_engine, default_cache_dir
    from scaleprof.engines.registry import ALIASES
    from scaleprof.engines.shapes import describe, shape_set
    from scaleprof.errors import BadInput
    from scaleprof.export.rebuild import rebuild_model

    onnx_path = Path(args.onnx)
    if not onnx_path.is_file():
        raise BadInput(f"{onnx_path}: no such ONNX file")
    if args.trtexec and args.backend != "tensorrt":
        raise BadInput("--trtexec builds TensorRT engines: use it with --backend tensorrt")
    if args.threads is not None and args.threads <= 0:
        raise BadInput(f"--threads must be a positive integer, got {args.threads}")
    needs_default = not (args.resolution or args.shapes or args.min_shapes or args.max_shapes)
    points, ranges = shape_set(
        shapes=args.shapes, batch=args.batch, resolution=args.resolution, min_shapes=args.min_shapes,
        opt_shapes=args.opt_shapes, max_shapes=args.max_shapes,
        default_resolution=default_resolution(onnx_path) if needs_default else 224)
    device = args.device or ("cuda" if ALIASES.get(args.backend, args.backend) == "tensorrt" else "cpu")
    spec = BuildSpec(backend=args.backend, device=device, precision=args.precision, threads=args.threads,
                     shapes=points, ranges=ranges,
                     options=tuple(sorted([parse_option(o) for o in args.option]
                                          + ([("trtexec", args.trtexec)] if args.trtexec else []))))
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(args.out)
    progress = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    result = build_engine(onnx_path, spec, cache_dir, force=args.force, progress=progress, model_source=rebuild_model)
    m = result.engine.manifest
    if args.json:
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
        how = (f"from the cache ({result.seconds * 1e3:.0f} ms)" if result.cached
               else f"built in {result.seconds:.2f} s")
        print(f"engine: {result.directory}  {how}")
        print(f"  {m.backend} {m.backend_version} on {m.device} ({m.device_name}), {m.precision}, "
              f"shapes {describe(m.shapes, m.ranges)}")
    return 0
