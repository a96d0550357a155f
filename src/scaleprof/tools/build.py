"""`scaleprof build FILE.onnx --backend ort|torch|tensorrt`: an engine for a shape set, from the cache
when an intact one exists. Prints where the engine is and whether it came from the cache."""

from __future__ import annotations

import json
from pathlib import Path

from scaleprof.tools.args import add_engine_arguments, add_output_arguments, build_spec, default_resolution, say

NAME = "build"
HELP = "build (or fetch from the cache) a runtime engine for an ONNX file"


def add_arguments(parser) -> None:
    parser.add_argument("onnx", metavar="FILE.onnx", help="the ONNX file (from `scaleprof export`, or any image model)")
    add_engine_arguments(parser)
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="backend option, repeatable: ort ep=cuda|tensorrt, opt_level=basic|extended|all; "
                             "torch channels_last=true, compile=true|max-autotune, cuda_graph=false")
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
    from scaleprof.core.onnx_file import image_input, load_model
    from scaleprof.engines.cache import build_engine, default_cache_dir
    from scaleprof.export.rebuild import rebuild_model
    from scaleprof.engines.shapes import shape_set
    from scaleprof.errors import BadInput

    onnx_path = Path(args.onnx)
    if not onnx_path.is_file():
        raise BadInput(f"{onnx_path}: no such ONNX file")
    if args.trtexec and args.backend != "tensorrt":
        raise BadInput("--trtexec builds TensorRT engines: use it with --backend tensorrt")
    needs_default = not (args.resolution or args.shapes or args.min_shapes or args.max_shapes)
    input_name, _ = image_input(load_model(onnx_path, load_weights=False), onnx_path)
    points, ranges = shape_set(
        shapes=args.shapes, batch=args.batch, resolution=args.resolution, min_shapes=args.min_shapes,
        opt_shapes=args.opt_shapes, max_shapes=args.max_shapes, input_name=input_name,
        default_resolution=default_resolution(onnx_path) if needs_default else 224)
    options = [parse_option(o) for o in args.option] + ([("trtexec", args.trtexec)] if args.trtexec else [])
    spec = build_spec(args, points, ranges, options, onnx_path)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir(args.out)
    result = build_engine(onnx_path, spec, cache_dir, force=args.force, progress=say(args),
                          model_source=rebuild_model)
    _print(result, args.json)
    return 0


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
        how = (f"from the cache ({result.seconds * 1e3:.0f} ms)" if result.cached
               else f"built in {result.seconds:.2f} s")
        print(f"engine: {result.directory}  {how}")
        print(f"  {m.backend} {m.backend_version} on {m.device} ({m.device_name}), {m.precision}, "
              f"shapes {describe(m.shapes, m.ranges)}")
