"""The count records of this stage (CONVENTION, LayerCount, Counts) live in the lowest layer,
scaleprof.core.counts, where the flops search of scaleprof.models reads them too."""

from scaleprof.core.counts import CONVENTION, Counts, LayerCount

__all__ = ["CONVENTION", "Counts", "LayerCount"]
