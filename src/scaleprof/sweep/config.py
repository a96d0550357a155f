"""What a sweep measures: deployment targets (and their presets), the points of the grid and the
SweepConfig they expand from. Reading and checking a config file is scaleprof.sweep.config_file."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from scaleprof.engines.backends import builds
from scaleprof.engines.int8_flavour import flavour_of, precision_label
from scaleprof.profile.types import TimingSettings

DEFAULT_ALPHA = 0.8
TIMING_KEYS = tuple(f.name for f in fields(TimingSettings))


@dataclass(frozen=True)
class Target:
    """A deployment target: where and how a point is measured."""

    name: str
    backend: str
    device: str = "cpu"
    threads: int | None = None
    options: tuple[tuple[str, Any], ...] = ()     # sorted (key, value) pairs, as BuildSpec takes them

    def to_dict(self) -> dict:
        return {"name": self.name, "backend": self.backend, "device": self.device,
                "threads": self.threads, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, data: dict, name: str = "") -> "Target":
        """The inverse of to_dict (a calibration stores its target so): the name given wins."""
        return cls(name or data.get("name", ""), data.get("backend", "ort"), data.get("device", "cpu"),
                   data.get("threads"), tuple(sorted((data.get("options") or {}).items())))


def definition(target) -> dict:
    """What a target (a Target.to_dict(), as stored) says beside its name; missing keys read as their
    defaults, and anything but a mapping as malformed (it then equals no real definition)."""
    if not isinstance(target, dict):
        return {"malformed": True}
    what = {"backend": target.get("backend"), "device": target.get("device", "cpu"),
            "threads": target.get("threads"), "options": target.get("options") or {}}
    return json.loads(json.dumps(what, sort_keys=True, default=str))     # tuples and lists alike


def describe_definition(target) -> str:
    d = definition(target)
    if "malformed" in d:
        return "a malformed definition"
    options = ", ".join(f"{k}={v}" for k, v in sorted(d["options"].items())) if isinstance(d["options"], dict) \
        else str(d["options"])
    return f"backend {d['backend']}, device {d['device']}, threads {d['threads'] or 'default'}, options {options or 'none'}"


# Presets a config may name instead of spelling a target out.
PRESETS: dict[str, Target] = {
    "cpu-ort": Target("cpu-ort", "ort", "cpu"),
    "cpu-torch": Target("cpu-torch", "torch", "cpu"),
    "h100-trt-fp16": Target("h100-trt-fp16", "tensorrt", "cuda"),
    "h100-torch-fp16": Target("h100-torch-fp16", "torch", "cuda"),
    "h100-ort-cuda": Target("h100-ort-cuda", "ort", "cuda"),
}
# Presets whose name fixes a precision: a point of another precision is not theirs.
PRESET_PRECISION = {"h100-trt-fp16": "fp16", "h100-torch-fp16": "fp16"}


@dataclass(frozen=True)
class Point:
    """One measurement of the grid. ``key`` identifies it across runs (with target + environment)."""

    model: str
    strategy: str                 # "none" for the unscaled base model
    alpha: float | None
    scale: float
    resolution: int | None        # None = "auto": what the strategy chose
    batch: int
    precision: str
    target: str
    flavour: str = ""             # int8: the file's activation type (scaleprof.engines.int8_flavour)

    @property
    def key(self) -> str:
        """The point's identity in the store: a point measured on a file of another flavour is another
        point (an int8 result is never stored under the flavour it was not measured with)."""
        alpha = "" if self.alpha is None else f"{self.alpha:g}"
        res = "auto" if self.resolution is None else str(self.resolution)
        flavour = f"|act={self.flavour}" if self.flavour else ""
        return (f"{self.model}|{self.strategy}|{alpha}|{self.scale:g}|{res}|"
                f"b{self.batch}|{self.precision}{flavour}")

    @property
    def label(self) -> str:
        strategy = self.strategy if self.alpha is None else f"{self.strategy}({self.alpha:g})"
        res = "" if self.resolution is None else f" @{self.resolution}"
        precision = precision_label(self.precision, self.flavour)
        return f"{self.model} {strategy} x{self.scale:g}{res} b{self.batch} {precision} [{self.target}]"


@dataclass(frozen=True)
class SweepConfig:
    name: str
    models: tuple[str, ...]
    strategies: tuple[str, ...]
    scales: tuple[float, ...]
    targets: tuple[Target, ...]
    alpha: tuple[float, ...] = (DEFAULT_ALPHA,)
    batch_sizes: tuple[int, ...] = (1,)
    resolutions: tuple[int | None, ...] = (None,)
    precisions: tuple[str, ...] = ("fp32",)
    timing: TimingSettings = field(default_factory=TimingSettings)
    layers: bool = True
    budget_ms: tuple[float, ...] = ()
    source: str = ""              # the YAML text it came from (stored with the sweep)

    def points(self) -> list[Point]:
        """The grid, in an order that keeps one model spec's shapes together (one engine each)."""
        out = []
        for model, (strategy, alpha), scale, precision, target in itertools.product(
                self.models, self._strategy_alphas(), self.scales, self.precisions, self.targets):
            if PRESET_PRECISION.get(target.name, precision) != precision or not builds(target.backend, precision):
                continue
            for resolution, batch in itertools.product(self.resolutions, self.batch_sizes):
                out.append(Point(model, strategy, alpha, float(scale), resolution, batch,
                                 precision, target.name, flavour_of(precision, target.backend, target.device)))
        return out

    def size_bound(self) -> int:
        """The number of points before the precisions a preset does not take are left out (computed
        without making them: a hostile grid's product may be astronomical)."""
        return math.prod(len(axis) for axis in (self.models, self._strategy_alphas(), self.scales, self.precisions,
                                                self.targets, self.resolutions, self.batch_sizes))

    def _strategy_alphas(self):
        return unique((strategy, alpha) for strategy in self.strategies
                      for alpha in (self.alpha if strategy == "dWr" else (None,)))

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def to_dict(self) -> dict:
        return {"name": self.name, "models": list(self.models), "strategies": list(self.strategies),
                "alpha": list(self.alpha), "scales": list(self.scales),
                "batch_sizes": list(self.batch_sizes),
                "resolutions": ["auto" if r is None else r for r in self.resolutions],
                "precisions": list(self.precisions), "targets": [t.to_dict() for t in self.targets],
                "timing": {**{k: getattr(self.timing, k) for k in TIMING_KEYS}, "layers": self.layers},
                "budget_ms": list(self.budget_ms)}


def unique(items) -> list:
    """``items`` without repeats, first occurrence first."""
    out, seen = [], set()
    for item in items:             # a set, not ``in out``: a hostile list of 10^5 values stays linear
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
