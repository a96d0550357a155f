"""BatchNorm statistics from seeded random images, so a random-weight export exercises BN folding.

Importing this module does not import torch; recalibrating does.
"""

from __future__ import annotations

CALIBRATION_RESOLUTION = 128      # recalibrate_bn feeds images of at most this size


def recalibrate_bn(model, resolution: int, seed: int) -> None:
    """Give BatchNorm layers the statistics of (seeded) random images, in place: two batches of four
    N(0, 1) images of min(``resolution``, 128) px from ``torch.Generator().manual_seed(seed)``.

    Freshly initialised timm models have BN with mean 0 / var 1 / gamma 1 / beta 0 and logits of ~1e-5:
    fp16 then underflows to subnormals, folded biases are all zero and a parity check cannot see a
    BN-folding mistake. With data statistics every BN output is ~unit variance and folding is exercised.
    Only BN running statistics change (weights are untouched); use recalibrate_bn=False to export as given.

    ``export_onnx(..., ExportOptions(recalibrate_bn=True, seed=S))`` calls this with the export
    resolution and S (the file's export record keeps "seed", "resolution" and "recalibrated_bn"), so when
    the record's "weights" is "seeded" (export_onnx built the model itself), ``build_model(spec, seed=S)``
    followed by ``recalibrate_bn(model, resolution, S)`` rebuilds the network the file holds.
    The global torch RNG is neither used nor advanced."""
    import torch

    resolution = min(int(resolution), CALIBRATION_RESOLUTION)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    gen = torch.Generator().manual_seed(seed)
    saved = [(m, m.momentum) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None          # cumulative average over the calibration batches
        m.train()
    try:
        with torch.no_grad():
            for _ in range(2):
                model(torch.randn(4, 3, resolution, resolution, generator=gen))
    finally:
        for m, momentum in saved:
            m.momentum = momentum
            m.eval()
