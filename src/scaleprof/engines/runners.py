"""Timed single inferences (the ``Runner`` protocol of scaleprof.engines.base), measured each
device's correct way.

- CPU: ``time.perf_counter`` around one call ("perf_counter").
- CUDA: two CUDA events around the work on a stream, synchronised on the end event
  (``CudaEventTimer``): one eager forward ("cuda-events") or one replay of a CUDA graph captured
  once ("cuda-graph+cuda-events"), which leaves out the host's launch overhead.

The torch backend times its module with ``CpuRunner``, ``CudaEagerRunner`` or ``CudaGraphRunner``;
the TensorRT runner (scaleprof.engines.tensorrt.runner) times ``execute_async_v3`` with
``CudaEventTimer``. torch is imported when a runner is made, never at module level.
"""

from __future__ import annotations

import time
from typing import Callable

from scaleprof.engines.base import ShapePoint


class CudaEventTimer:
    """Elapsed GPU milliseconds of what ``work()`` enqueues, between two CUDA events recorded on
    ``stream`` (the current stream when None)."""

    def __init__(self, stream=None):
        import torch

        self._torch = torch
        self.stream = stream
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __call__(self, work: Callable[[], object]) -> float:
        if self.stream is None:
            self.start.record()
            work()
            self.end.record()
        else:
            with self._torch.cuda.stream(self.stream):
                self.start.record(self.stream)
                work()
                self.end.record(self.stream)
        self.end.synchronize()
        return float(self.start.elapsed_time(self.end))


class CpuRunner:
    timing_method = "perf_counter"

    def __init__(self, fn, x, shape: ShapePoint):
        self.fn, self.x, self.shape = fn, x, shape

    def __call__(self) -> float:
        import torch

        with torch.inference_mode():
            start = time.perf_counter()
            self.fn(self.x)
            return (time.perf_counter() - start) * 1e3


class CudaEagerRunner:
    """CUDA events around one eager (or compiled) forward on the current stream."""
    timing_method = "cuda-events"

    def __init__(self, fn, x, shape: ShapePoint):
        import torch

        self._torch = torch
        self.fn, self.x, self.shape = fn, x, shape
        self.timer = CudaEventTimer()

    def __call__(self) -> float:
        with self._torch.inference_mode():
            return self.timer(lambda: self.fn(self.x))


class CudaGraphRunner:
    """Captures one forward into a CUDA graph (after warm-up on a side stream, as the PyTorch docs
    require), then times each replay with CUDA events on the capture-compatible current stream."""
    timing_method = "cuda-graph+cuda-events"

    def __init__(self, fn, x, shape: ShapePoint, warmup: int = 3):
        import torch

        self.shape = shape
        self.x = x                                    # static input: the graph reads this memory
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(warmup):
                    fn(self.x)
            torch.cuda.current_stream().wait_stream(side)
            torch.cuda.synchronize()
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = fn(self.x)                 # static output, kept alive with the graph
        torch.cuda.synchronize()
        self.timer = CudaEventTimer()

    def __call__(self) -> float:
        return self.timer(self.graph.replay)
