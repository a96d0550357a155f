"""Rebuild the network an ONNX file was exported from, for the torch engine.

The engines stage reads files only, so it cannot build models: its torch backend reads a *recipe*
out of the ONNX file's scaleprof metadata (scaleprof.engines.torch_backend.model_recipe) and asks
the ModelSource its caller handed it for the network. This is that source:

    from scaleprof.export.rebuild import rebuild_model
    build_engine(onnx_path, BuildSpec(backend="torch"), cache_dir, model_source=rebuild_model)

The recipe holds ``spec`` (the ModelSpec as a dict), ``seed`` (the export's weight seed),
``recalibrated_bn`` and ``resolution`` (whether, and at which resolution, export_onnx gave BatchNorm
the statistics of seeded random images). Other keys (the engine's options, input and output names)
are ignored here. Importing this module does not import torch.
"""

from __future__ import annotations

from scaleprof.models import ModelSpec, build_model


def rebuild_model(recipe: dict):
    """The fp32 CPU network (a torch.nn.Module in eval mode) an ONNX file was exported from: the
    spec's seeded weights, and BatchNorm statistics recalibrated exactly as scaleprof.export does for
    random-init weights, so the torch engine computes what the ONNX engines compute."""
    import torch

    from scaleprof.export.onnx_export import recalibrate_bn   # the export's own recipe, shared on purpose

    spec = ModelSpec.from_dict(recipe["spec"])
    seed = int(recipe.get("seed", 0))
    model = build_model(spec, device="cpu", seed=seed)
    if recipe.get("recalibrated_bn"):
        resolution = int(recipe.get("resolution") or spec.resolution)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            recalibrate_bn(model, min(resolution, 128), seed)
    return model.eval()
