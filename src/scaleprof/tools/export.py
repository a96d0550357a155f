"""`scaleprof export MODEL [--strategy S --alpha A --scale F | --phi P] -o FILE.onnx`: a checked ONNX file.

The file carries its ModelSpec and predicted counts (``scaleprof inspect FILE.onnx`` shows them);
it is written under a temporary name and renamed into place only once every check passed."""

from __future__ import annotations

import dataclasses
import json
import os

from scaleprof.tools.args import (add_model_arguments, add_output_arguments, add_precision_argument,
                                  add_shape_arguments, check_shape_arguments, say, selected_spec)

NAME = "export"
HELP = "export a (scaled) model to a checked ONNX file (parity vs PyTorch in ONNX Runtime)"


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_shape_arguments(parser, batch="the batch of a --static export (default 1)",
                        resolution="export resolution (default: the model's own)", batch_default=None)
    parser.add_argument("-o", "--output", required=True, metavar="FILE.onnx", help="where to write the ONNX file")
    parser.add_argument("--static", action="store_true", help="static input shape (batch x 3 x R x R) instead of "
                        "dynamic batch and spatial axes")
    parser.add_argument("--opset", type=int, help="ONNX opset (default 17)")
    add_precision_argument(parser, "weights and activations (fp16: for strongly typed TensorRT networks; int8, "
                                   "fp8: a QDQ file from ONNX Runtime's static quantization, fp8 for TensorRT-RTX)")
    parser.add_argument("--calibration-images", metavar="DIR",
                        help="int8/fp8: calibrate on the images of DIR (default: 8 seeded random images; "
                             "latency does not depend on the values)")
    parser.add_argument("--int8-activations", choices=("int8", "uint8"), default="int8",
                        help="int8: symmetric int8 activations (default; what TensorRT takes); uint8: asymmetric "
                             "uint8 activations, which ONNX Runtime's CPU kernels fuse far more of on x86")
    parser.add_argument("--tolerance", metavar="RTOL[,ATOL]",
                        help="parity tolerance: fail when max|onnx-torch| > ATOL + RTOL*max|torch| "
                             "(default 1e-3,1e-5 for fp32; 5e-2,1e-3 for fp16; 0.5 for int8 and 2 for fp8, "
                             "against the fp32 network)")
    parser.add_argument("--no-parity", action="store_true", help="skip the ONNX Runtime parity run (checker only)")
    parser.add_argument("--exporter", default="torchscript", choices=("torchscript", "dynamo"),
                        help="torch.onnx exporter (default torchscript: module-scoped node names)")
    add_output_arguments(parser)


def parse_tolerance(text: str | None) -> tuple[float | None, float | None]:
    from scaleprof.errors import BadInput

    if text is None:
        return None, None
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise BadInput(f"--tolerance {text!r}: expected RTOL or RTOL,ATOL (numbers)")
    if len(values) > 2 or any(v < 0 or v != v for v in values):
        raise BadInput(f"--tolerance {text!r}: expected RTOL or RTOL,ATOL, each >= 0")
    return values[0], values[1] if len(values) > 1 else None


def run(args) -> int:
    from scaleprof.core.files import check_replaceable
    from scaleprof.errors import BadInput

    if str(args.output).endswith(("/", os.sep)):
        raise BadInput(f"-o {args.output}: names a folder; give the ONNX file's name (e.g. {args.output}model.onnx)")
    check_replaceable(args.output)      # a device or directory there: refused before any work
    rtol, atol = parse_tolerance(args.tolerance)
    if args.tolerance is not None and args.no_parity:
        raise BadInput("--tolerance is the parity check's; with --no-parity there is none")
    check_shape_arguments(args, args.model)
    if args.batch is not None and not args.static:
        raise BadInput("--batch applies only to a --static export (a dynamic export takes any batch)")
    spec, _ = selected_spec(args)                       # bad names and flags first, before torch exports
    if args.resolution is not None:
        spec = dataclasses.replace(spec, resolution=args.resolution)

    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.export.onnx_export import DEFAULT_OPSET

    options = ExportOptions(opset=DEFAULT_OPSET if args.opset is None else args.opset, precision=args.precision, dynamic=not args.static,
                            static_batch=args.batch or 1, rtol=rtol, atol=atol, check_parity=not args.no_parity,
                            exporter=args.exporter, calibration_images=args.calibration_images,
                            int8_activations=args.int8_activations)
    result = export_onnx(spec, args.output, options, progress=say(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
        return 0
    shape = "x".join(str(d) for d in result.input_shape)
    print(f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.nodes} nodes, opset {result.opset}, "
          f"{options.precision}, input {shape}) in {result.seconds['total']:.1f} s")
    quantization = result.quantization
    if quantization:
        calibration = quantization["calibration"]
        print(f"  {options.precision} QDQ ({quantization['type']}, per-channel symmetric weights, "
              f"{quantization['activations']} activations, float biases), "
              f"calibrated on {calibration['images']} {'images of ' + calibration['folder'] if calibration['folder'] else 'random images'}")
    against = " against fp32" if quantization else ""
    for p in result.parity:
        top1 = f", top-1 agreement {p.top1:.0%} of {p.batch}" if p.top1 is not None else ""
        print(f"  parity{against} {p.batch}x3x{p.resolution}x{p.resolution}: max abs {p.max_abs:.3g}, "
              f"relative {p.max_rel:.3g} (of max |logit| {p.ref_scale:.3g}){top1}")
    if result.spatial_multiple > 1:
        print(f"  same-padding pads fixed at {spec.resolution}: other resolutions must be "
              f"{spec.resolution} + k*{result.spatial_multiple}")
    return 0
