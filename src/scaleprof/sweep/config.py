"""Sweep configuration: a YAML file, safe-loaded and validated with one clear message per problem.

    name: effnet-strategies          # optional, default: the file's stem
    models: [efficientnet_b0]        # required: timm registry names
    strategies: [d, w, r, dwr, dWr]  # required: named strategies, pycls weighted specs, "en"
    alpha: [0.8]                     # dWr's alpha (a number or a list); default 0.8
    scales: [1, 2, 4]                # required: flops factors s > 0
    batch_sizes: [1]                 # default [1]
    resolutions: [auto]              # "auto" (what the strategy chose) or pixel sizes; default [auto]
    precisions: [fp32]               # fp32 | fp16; default [fp32]
    targets:                         # required: preset names or full definitions
      - cpu-ort
      - {name: cpu-ort-1t, backend: ort, device: cpu, threads: 1, options: {graph_optimization_level: all}}
    profile:                         # timing settings (scaleprof.profile.TimingSettings) + layers
      min_time_s: 1.0
      layers: true                   # per-layer profiles (a separate run per point)
    budget_ms: [10, 50]              # optional: latency budgets the report answers for

Every point of the grid is models x strategies (x alpha for dWr) x scales x resolutions x
batch_sizes x precisions x targets. An unscaled point is strategy "none" (or scale 1 of any strategy).
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from scaleprof.errors import BadInput, nearest
from scaleprof.profile.types import TimingSettings

TOP_KEYS = ("name", "models", "strategies", "alpha", "scales", "batch_sizes", "resolutions",
            "precisions", "targets", "profile", "budget_ms")
REQUIRED = ("models", "strategies", "scales", "targets")
TARGET_KEYS = ("name", "backend", "device", "threads", "options")
PRECISIONS = ("fp32", "fp16")
BACKENDS = ("ort", "torch", "tensorrt")
TIMING_KEYS = tuple(f.name for f in fields(TimingSettings))
PROFILE_KEYS = TIMING_KEYS + ("layers",)
POSITIVE_TIMING = ("min_iters", "min_time_s", "max_time_s", "layer_iters", "target_ci")   # the rest may be 0
DEFAULT_ALPHA = 0.8


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

    @property
    def key(self) -> str:
        alpha = "" if self.alpha is None else f"{self.alpha:g}"
        res = "auto" if self.resolution is None else str(self.resolution)
        return (f"{self.model}|{self.strategy}|{alpha}|{self.scale:g}|{res}|"
                f"b{self.batch}|{self.precision}")

    @property
    def label(self) -> str:
        strategy = self.strategy if self.alpha is None else f"{self.strategy}({self.alpha:g})"
        res = "" if self.resolution is None else f" @{self.resolution}"
        return f"{self.model} {strategy} x{self.scale:g}{res} b{self.batch} {self.precision} [{self.target}]"


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
            if PRESET_PRECISION.get(target.name, precision) != precision:
                continue
            for resolution, batch in itertools.product(self.resolutions, self.batch_sizes):
                out.append(Point(model, strategy, alpha, float(scale), resolution, batch,
                                 precision, target.name))
        return out

    def _strategy_alphas(self):
        return _dedup((strategy, alpha) for strategy in self.strategies
                      for alpha in (self.alpha if strategy == "dWr" else (None,)))

    def target(self, name: str) -> Target:
        return next(t for t in self.targets if t.name == name)

    def to_dict(self) -> dict:
        return {"name": self.name, "models": list(self.models), "strategies": list(self.strategies),
                "alpha": list(self.alpha), "scales": list(self.scales),
                "batch_sizes": list(self.batch_sizes),
                "resolutions": ["auto" if r is None else r for r in self.resolutions],
                "precisions": list(self.precisions), "targets": [t.to_dict() for t in self.targets],
                "profile": {**{k: getattr(self.timing, k) for k in TIMING_KEYS}, "layers": self.layers},
                "budget_ms": list(self.budget_ms)}


# ----------------------------------------------------------------------------------- loading

def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file; any problem is one BadInput line naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: cannot read the config ({err})") from None
    return parse_config(text, default_name=path.stem, where=str(path))


def parse_config(text: str, default_name: str = "sweep", where: str = "config") -> SweepConfig:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise BadInput(f"{where}: malformed YAML{at}: {problem}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a mapping of keys ({', '.join(REQUIRED)}, ...), "
                       f"got {type(data).__name__ if data is not None else 'an empty file'}")
    return from_dict(data, default_name=default_name, where=where, source=text)


def from_dict(data: dict, default_name: str = "sweep", where: str = "config",
              source: str = "") -> SweepConfig:
    def fail(message: str):
        raise BadInput(f"{where}: {message}")

    _check_keys(data, TOP_KEYS, "", fail)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        fail(f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")

    name = data.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        fail("name: expected a non-empty string")

    models = _str_list(data["models"], "models", fail)
    strategies = _str_list(data["strategies"], "strategies", fail)
    for s in strategies:
        _check_strategy(s, fail)
    alpha = tuple(_num_list(data.get("alpha", DEFAULT_ALPHA), "alpha", fail, float))
    for a in alpha:
        if not 0 < a <= 1:
            fail(f"alpha: {a:g} is outside (0, 1]")
    scales = tuple(_num_list(data["scales"], "scales", fail, float))
    for s in scales:
        if not s > 0 or not math.isfinite(s):
            fail(f"scales: {s:g} is not a positive flops factor")
    batch_sizes = tuple(_num_list(data.get("batch_sizes", 1), "batch_sizes", fail, int))
    for b in batch_sizes:
        if b < 1:
            fail(f"batch_sizes: {b} is not a positive batch size")
    resolutions = _resolutions(data.get("resolutions", "auto"), fail)
    precisions = tuple(_str_list(data.get("precisions", "fp32"), "precisions", fail))
    for p in precisions:
        if p not in PRECISIONS:
            fail(f"precisions: unknown precision {p!r}{nearest(p, PRECISIONS)}; valid: {', '.join(PRECISIONS)}")
    targets = _targets(data["targets"], fail)
    timing, layers = _profile(data.get("profile") or {}, fail)
    budget = tuple(_num_list(data["budget_ms"], "budget_ms", fail, float)) if "budget_ms" in data else ()
    if any(not 0 < b < math.inf for b in budget):
        fail("budget_ms: budgets must be positive, finite milliseconds")

    config = SweepConfig(name=name.strip(), models=tuple(_dedup(models)),
                         strategies=tuple(_dedup(strategies)), scales=tuple(_dedup(scales)),
                         targets=targets, alpha=tuple(_dedup(alpha)),
                         batch_sizes=tuple(_dedup(batch_sizes)), resolutions=tuple(_dedup(resolutions)),
                         precisions=tuple(_dedup(precisions)), timing=timing, layers=layers,
                         budget_ms=budget, source=source)
    if not config.points():
        fail("the grid is empty: no target takes any of the precisions "
             f"({', '.join(precisions)}; {', '.join(f'{k} is {v}-only' for k, v in PRESET_PRECISION.items())})")
    return config


def _check_strategy(name: str, fail) -> None:
    """Named strategies, pycls weights (d1_w8_r1), "en" (scaleprof.models.strategies), or "none"."""
    if name == "none":
        return
    from scaleprof.models.strategies import parse_strategy

    try:
        parse_strategy(name)
    except BadInput as err:                 # its message names the nearest strategies
        fail(f"strategies: {err}")


def _check_keys(data: dict, valid, prefix: str, fail) -> None:
    for key in data:
        if key not in valid:
            fail(f"unknown key {prefix + str(key)!r}{nearest(key, valid)}; valid keys: {', '.join(valid)}")


def _dedup(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _as_list(value, key: str, fail) -> list:
    items = value if isinstance(value, list) else [value]
    if not items or value is None:
        fail(f"{key}: the list is empty; give at least one value")
    return items


def _str_list(value, key: str, fail) -> list[str]:
    items = _as_list(value, key, fail)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            fail(f"{key}: expected names (strings), got {item!r}")
    return [i.strip() for i in items]


def _is_number(item, kind) -> bool:
    """A YAML number (not a bool) that ``kind`` (int or float) holds exactly: 2.0 is an int, .inf is not."""
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return False
    return kind is float or float(item).is_integer()


def _num_list(value, key: str, fail, kind) -> list:
    out = []
    for item in _as_list(value, key, fail):
        if not _is_number(item, kind):
            fail(f"{key}: expected {'integers' if kind is int else 'numbers'}, got {item!r}")
        out.append(kind(item))
    return out


def _resolutions(value, fail) -> list[int | None]:
    out = []
    for item in _as_list(value, "resolutions", fail):
        if item == "auto":
            out.append(None)
        elif isinstance(item, int) and not isinstance(item, bool) and item >= 32:
            out.append(item)
        else:
            fail(f"resolutions: expected 'auto' or a pixel size >= 32, got {item!r}")
    return out


def _targets(value, fail) -> tuple[Target, ...]:
    targets = []
    for item in _as_list(value, "targets", fail):
        if isinstance(item, str):
            if item not in PRESETS:
                fail(f"targets: unknown preset {item!r}{nearest(item, PRESETS)}; presets: "
                     f"{', '.join(PRESETS)} (or a mapping with {', '.join(TARGET_KEYS)})")
            targets.append(PRESETS[item])
            continue
        if not isinstance(item, dict):
            fail(f"targets: expected a preset name or a mapping, got {item!r}")
        _check_keys(item, TARGET_KEYS, "targets.", fail)
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            fail(f"targets: every target needs a name, got {item!r}")
        preset = PRESETS.get(name)
        backend = item.get("backend", preset.backend if preset else None)
        if backend is None:
            fail(f"targets.{name}: missing key 'backend' ({', '.join(BACKENDS)})")
        if backend not in BACKENDS:
            fail(f"targets.{name}: unknown backend {backend!r}{nearest(backend, BACKENDS)}; "
                 f"valid: {', '.join(BACKENDS)}")
        device = item.get("device", preset.device if preset else "cpu")
        if not isinstance(device, str) or not re.match(r"^(cpu|cuda(:\d+)?)$", device):
            fail(f"targets.{name}: device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        threads = item.get("threads")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            fail(f"targets.{name}: threads must be a positive integer, got {threads!r}")
        options = item.get("options") or {}
        if not isinstance(options, dict):
            fail(f"targets.{name}: options must be a mapping, got {options!r}")
        targets.append(Target(name.strip(), backend, device, threads,
                              tuple(sorted((str(k), _freeze(v)) for k, v in options.items()))))
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        fail(f"targets: duplicate target name {dupes[0]!r}; each target needs its own name")
    return tuple(targets)


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    return value


def _profile(value, fail) -> tuple[TimingSettings, bool]:
    if not isinstance(value, dict):
        fail(f"profile: expected a mapping of timing settings, got {value!r}")
    _check_keys(value, PROFILE_KEYS, "profile.", fail)
    layers = value.get("layers", True)
    if not isinstance(layers, bool):
        fail(f"profile.layers: expected true or false, got {layers!r}")
    settings = {}
    defaults = TimingSettings()
    for key in TIMING_KEYS:
        if key not in value:
            continue
        item = value[key]
        kind = type(getattr(defaults, key))
        if not _is_number(item, kind):
            fail(f"profile.{key}: expected {'an integer' if kind is int else 'a number'}, got {item!r}")
        if not math.isfinite(item) or item < 0 or (key in POSITIVE_TIMING and item <= 0):
            fail(f"profile.{key}: {item!r} must be {'positive' if key in POSITIVE_TIMING else 'zero or more'} "
                 "and finite")
        settings[key] = kind(item)
    timing = replace(defaults, **settings)
    if timing.max_time_s < timing.min_time_s:
        fail(f"profile.max_time_s ({timing.max_time_s:g}) is below min_time_s ({timing.min_time_s:g})")
    return timing, layers
