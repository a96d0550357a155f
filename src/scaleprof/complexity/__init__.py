"""complexity stage: flops, params and activations of a scaleprof network or of an ONNX graph.

    from scaleprof.complexity import count_spec, count_onnx
    count_spec("efficientnet_b0").flops        # from the PyTorch network, built on the meta device
    count_onnx("model.onnx").flops             # from the ONNX graph alone

- torch_count: ``count_spec`` (a ModelSpec -> its network, built by scaleprof.models, -> Counts) and
  ``check_resolution``. The per-layer cost rules and the meta-device walk (``count_model``) are the
  lowest layer's, scaleprof.core.costs, which the flops search of scaleprof.models uses too; the
  records (Counts, LayerCount, CONVENTION) are scaleprof.core.counts'.
- onnx_count: ``count_onnx`` from an ONNX graph and ``node_modules`` (node -> PyTorch module).
- comparison: ``compare_counts``, ONNX counts explained against PyTorch ones (what export changes).

Importing this package does not import torch: ``count_model`` imports it when first asked for,
``count_spec`` when it counts; count_onnx never does.
"""

from scaleprof.complexity.comparison import CountsComparison, compare_counts
from scaleprof.complexity.onnx_count import count_onnx, node_modules
from scaleprof.complexity.torch_count import check_resolution, count_spec
from scaleprof.core.counts import CONVENTION, Counts, LayerCount


def __getattr__(name):  # the meta-device walk imports torch: only when asked for
    if name == "count_model":
        from scaleprof.core.costs import count_model

        return count_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CONVENTION", "Counts", "CountsComparison", "LayerCount", "check_resolution", "compare_counts",
           "count_model", "count_onnx", "count_spec", "node_modules"]
