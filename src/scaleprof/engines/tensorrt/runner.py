"""Running a deserialized TensorRT engine: device buffers and the timed runner.

Device buffers are torch CUDA tensors (no pycuda). ``bind_buffers`` selects the optimisation
profile for a shape on an execution context, sets the input shapes (set_input_shape) and binds
one tensor per I/O tensor (set_tensor_address). ``TensorRTRunner`` runs ``execute_async_v3`` once,
captures it in a CUDA graph where possible, and times each replay between CUDA events on the
engine's stream (scaleprof.engines.runners.CudaEventTimer).
"""

from __future__ import annotations

from typing import NamedTuple

from scaleprof.engines.base import ShapePoint
from scaleprof.engines.runners import CudaEventTimer
from scaleprof.errors import BadInput, EnvironmentProblem

TORCH_DTYPES = {                 # tensorrt.DataType member name -> torch dtype name
    "FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT32": "int32",
    "INT64": "int64", "INT8": "int8", "UINT8": "uint8", "BOOL": "bool",
}


def torch_dtype_name(trt_dtype) -> str:
    """torch dtype name for a tensorrt.DataType (by member name, so no TensorRT import here)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).rsplit(".", 1)[-1])
    if name not in TORCH_DTYPES:
        raise EnvironmentProblem(f"TensorRT tensor type {name} has no torch equivalent here")
    return TORCH_DTYPES[name]


class IOTensor(NamedTuple):
    name: str
    is_input: bool
    dtype: object                    # tensorrt.DataType
    dims: tuple                      # the engine's dims, -1 where dynamic


def io_tensors(trt, engine) -> list[IOTensor]:
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
        out.append(IOTensor(name, is_input, engine.get_tensor_dtype(name), tuple(engine.get_tensor_shape(name))))
    return out


def input_tensor(io: IOTensor, want: tuple, device, given=None):
    """The device buffer for input ``io`` at dims ``want``: ``given`` (numpy or torch) copied
    there, else random normal (zeros for integer inputs)."""
    import torch

    torch_dtype = getattr(torch, torch_dtype_name(io.dtype))
    if given is not None:
        return torch.as_tensor(given).to(device=device, dtype=torch_dtype).contiguous()
    if torch_dtype.is_floating_point:
        return torch.randn(want, device=device, dtype=torch_dtype)
    return torch.zeros(want, device=device, dtype=torch_dtype)


def bind_buffers(context, io: list[IOTensor], shape: ShapePoint, device, inputs: dict | None = None) -> dict:
    """Set every input's shape for ``shape`` on ``context`` (its profile already selected), make
    the device buffers and bind them. Returns {name: tensor}."""
    import torch

    tensors = {}
    for t in (t for t in io if t.is_input):
        channels = t.dims[1] if len(t.dims) > 1 and t.dims[1] > 0 else 3
        want = shape.dims(channels)
        if not context.set_input_shape(t.name, want):
            raise BadInput(f"TensorRT refused input shape {want} for {t.name!r}")
        tensors[t.name] = input_tensor(t, want, device, (inputs or {}).get(t.name))
    for t in (t for t in io if not t.is_input):
        out_shape = tuple(context.get_tensor_shape(t.name))
        if any(d < 0 for d in out_shape):
            raise EnvironmentProblem(f"output {t.name!r} has a data-dependent shape {out_shape}; not supported")
        tensors[t.name] = torch.empty(out_shape, device=device, dtype=getattr(torch, torch_dtype_name(t.dtype)))
    for name, tensor in tensors.items():
        if not context.set_tensor_address(name, tensor.data_ptr()):
            raise EnvironmentProblem(f"TensorRT refused the buffer for {name!r}")
    return tensors


class TensorRTRunner:
    """One prepared inference at a fixed shape on its own execution context. Calling it runs the
    captured CUDA graph once (plain execute_async_v3 when capture is not possible) between two
    CUDA events on the engine's stream and returns the elapsed milliseconds."""

    def __init__(self, context, tensors: dict, stream, shape: ShapePoint, cuda_graph: bool = True):
        import torch

        self.shape = shape
        self._context, self._tensors, self._stream = context, tensors, stream   # buffers live with the runner
        with torch.cuda.stream(stream):
            # one plain run first: TensorRT finishes shape-dependent setup before any capture
            if not context.execute_async_v3(stream.cuda_stream):
                raise EnvironmentProblem(f"TensorRT could not run the engine at {shape}")
        stream.synchronize()
        self._graph = None
        self.capture_error = ""
        if cuda_graph:
            self._graph = self._capture()
        self.timing_method = "cuda-graph+cuda-events" if self._graph is not None else "cuda-events"
        self._timer = CudaEventTimer(stream)

    def _capture(self):
        """The inference captured in a CUDA graph; None (and ``capture_error`` set) when it cannot be."""
        import torch

        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=self._stream):
                self._context.execute_async_v3(self._stream.cuda_stream)
            return graph
        except Exception as err:      # some engines cannot be captured; time them directly
            self.capture_error = f"{type(err).__name__}: {err}"[:200]
            torch.cuda.synchronize()
            return None

    def _execute(self) -> None:
        self._context.execute_async_v3(self._stream.cuda_stream)

    def __call__(self) -> float:
        return self._timer(self._graph.replay if self._graph is not None else self._execute)
