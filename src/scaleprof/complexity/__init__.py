"""complexity stage."""

from scaleprof.complexity.torch_count import check_resolution, count_model, count_spec
from scaleprof.complexity.types import CONVENTION, Counts, LayerCount
from scaleprof.complexity.onnx_count import CountsComparison, compare_counts, count_onnx, node_modules
