"""`scaleprof count MODEL [--strategy S --alpha A --scale F] [--resolution R] [--batch B] [--per-layer]`:
flops, params and activations from shapes alone (pycls conventions, docs/conventions.md#counting)."""

from __future__ import annotations

import json

from scaleprof.tools.args import (add_model_arguments, add_output_arguments, add_shape_arguments,
                                  check_shape_arguments, fmt_int, say, selected_spec, spec_fields,
                                  still_working)

NAME = "count"
HELP = "count flops (multiply-adds), params and activations of a base or scaled model, per layer or in total"


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    add_shape_arguments(parser, batch="batch size (default 1); counts are per image",
                        resolution="input resolution (default: the one the strategy chose, or the model's own)")
    parser.add_argument("--per-layer", action="store_true", help="also list every layer")
    add_output_arguments(parser)


def result(spec, counts, base_counts, per_layer: bool) -> dict:
    out = {
        **spec_fields(spec), "resolution": counts.resolution, "batch": counts.batch,
        "flops": counts.flops, "params": counts.params, "acts": counts.acts,
        "flops_ratio": counts.flops / base_counts.flops,
        "batch_flops": counts.batch_flops, "batch_acts": counts.batch_acts,
        "layer_count": counts.layer_count, "layer_kinds": counts.layer_kinds,
        "per": "image", "convention": counts.convention, "label": spec.label, "spec": spec.to_dict(),
    }
    if per_layer:
        out["layers"] = [{"name": r.name, "type": r.type, "output_shape": list(r.output_shape), "flops": r.flops,
                          "params": r.params, "acts": r.acts} for r in counts.layers]
    return out


def run(args) -> int:
    from scaleprof.models import family_of

    family_of(args.model)               # an unknown name fails before torch is imported (~3 s)
    check_shape_arguments(args, args.model)
    from scaleprof.complexity import count_spec

    spec, base = selected_spec(args)
    with still_working(f"counting {spec.label}", say(args)):       # a huge network takes minutes
        counts = count_spec(spec, args.resolution, batch=args.batch)
    base_counts = count_spec(base)
    info = result(spec, counts, base_counts, args.per_layer)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"{spec.label} at {counts.resolution}x{counts.resolution}, batch {counts.batch}")
    if args.per_layer:
        width = max([len(r.name) for r in counts.layers] + [5])
        print(f"  {'layer':{width}s}  {'type':22s} {'output shape':22s} {'flops':>14s} {'params':>11s} {'acts':>11s}")
        for r in counts.layers:
            shape = "x".join(str(d) for d in r.output_shape) or "-"
            print(f"  {r.name:{width}s}  {r.type[:22]:22s} {shape:22s} {r.flops:14,d} {r.params:11,d} {r.acts:11,d}")
        print()
    print(f"  flops   {fmt_int(counts.flops):>10} per image   {fmt_int(counts.batch_flops):>10} per batch"
          + (f"   x{info['flops_ratio']:.3f} of {base.model}" if spec.strategy or args.resolution else ""))
    print(f"  params  {fmt_int(counts.params):>10}")
    print(f"  acts    {fmt_int(counts.acts):>10} per image   {fmt_int(counts.batch_acts):>10} per batch")
    kinds = ", ".join(f"{kind} {n}" for kind, n in counts.layer_kinds.items())
    print(f"  layers  {counts.layer_count:>10} executed per inference ({kinds})")
    print(f"  convention: {counts.convention}")
    return 0
