"""TensorRT-RTX's runtime cache: the kernels its just-in-time step compiles on the GPU, kept in a
file so the next run on the same GPU, driver and library skips compiling them.

The build option ``runtime_cache=PATH`` records the file in the manifest (it changes nothing in the
plan). Where the engine runs, ``RuntimeCache`` creates an ``IRuntimeConfig`` from the engine and an
``IRuntimeCache`` from it, loads the file into it (the library checks the file against this GPU,
driver and version and refuses one from elsewhere: then the cache starts empty), makes every
execution context with that config, and writes the cache back when the engine is released.
All of this needs the GPU; without one no engine is loaded and nothing here runs.
"""

from __future__ import annotations

from pathlib import Path

from scaleprof.core.files import write_atomic
from scaleprof.errors import EnvironmentProblem


class RuntimeCache:
    """One engine's runtime config with its runtime cache, backed by ``path``."""

    def __init__(self, engine, path: str | Path):
        self.path = Path(path)
        self.config = engine.create_runtime_config()
        self.cache = self.config.create_runtime_cache()
        # False: no file yet, or one from another GPU / driver / version (the library refuses it)
        self.loaded = self.path.is_file() and bool(self.cache.deserialize(self.path.read_bytes()))
        if not self.config.set_runtime_cache(self.cache):
            raise EnvironmentProblem(f"TensorRT-RTX refused the runtime cache {self.path}")

    def context(self, engine):
        """An execution context whose compiled kernels go to (and come from) the cache."""
        return engine.create_execution_context(self.config)

    def save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, bytes(memoryview(self.cache.serialize())))
        except OSError as err:
            raise EnvironmentProblem(f"cannot write the runtime cache {self.path}: {err.strerror or err}") from None
