"""complexity stage: flops, params and activations of a network (PyTorch) or of an ONNX graph.

    from scaleprof.complexity import count_spec, count_onnx
    count_spec("efficientnet_b0").flops        # from the PyTorch network, built on the meta device
    count_onnx("model.onnx").flops             # from the ONNX graph alone

Importing this package does not import torch: count_model, count_spec and check_resolution
(scaleprof.complexity.torch_count) import it when first asked for; count_onnx never does.
"""

from scaleprof.complexity.types import CONVENTION, Counts, LayerCount
from scaleprof.complexity.onnx_count import CountsComparison, compare_counts, count_onnx, node_modules

_TORCH = {"check_resolution", "count_model", "count_spec"}


def __getattr__(name):  # the PyTorch-side counter imports torch: only when asked for
    if name in _TORCH:
        from scaleprof.complexity import torch_count

        return getattr(torch_count, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_TORCH | {"CONVENTION", "Counts", "LayerCount", "CountsComparison", "compare_counts", "count_onnx",
                           "node_modules"})
