"""`scaleprof models`: the model families, their base models (timm names) and the scaling strategies."""

from __future__ import annotations

import json

from scaleprof.tools.args import add_output_arguments

NAME = "models"
HELP = "list model families, base models and scaling strategies"


def add_arguments(parser) -> None:
    add_output_arguments(parser)


def run(args) -> int:
    from scaleprof.models.families import FAMILIES
    from scaleprof.models.strategies import describe

    families = {name: {"title": f.title, "models": list(f.bases),
                       "default_resolution": {m: f.default_resolution(m) for m in f.bases}}
                for name, f in FAMILIES.items()}
    strategies = dict(describe())
    if args.json:
        print(json.dumps({"families": families, "strategies": strategies}, indent=2))
        return 0
    print("Model families (base models are timm registry names; default resolution in brackets)")
    for name, info in families.items():
        print(f"\n  {name}: {info['title']}")
        names = [f"{m} [{info['default_resolution'][m]}]" for m in info["models"]]
        for i in range(0, len(names), 4):
            print("    " + "  ".join(f"{n:26s}" for n in names[i:i + 4]).rstrip())
    print("\nScaling strategies (scaleprof scale MODEL --strategy S --scale F)")
    for name, text in strategies.items():
        print(f"  {name:22s} {text}")
    return 0
