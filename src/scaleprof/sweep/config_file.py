"""Sweep configuration files: YAML, safe-loaded and validated with one clear message per problem,
into the SweepConfig of scaleprof.sweep.config.

    name: effnet-strategies          # optional, default: the file's stem
    models: [efficientnet_b0]        # required: timm registry names
    strategies: [d, w, r, dwr, dWr]  # required: named strategies, pycls weighted specs, "en"
    alpha: [0.8]                     # dWr's alpha (a number or a list); default 0.8
    scales: [1, 2, 4]                # required: flops factors s > 0
    batch_sizes: [1]                 # default [1]
    resolutions: [auto]              # "auto" (what the strategy chose) or pixel sizes; default [auto]
    precisions: [fp32]               # fp32 | fp16 | int8 | fp8; default [fp32] (a target skips one
                                     # its backend does not build: int8 not on torch, fp8 TensorRT only)
    targets:                         # required: preset names or full definitions
      - cpu-ort
      - {name: cpu-ort-1t, backend: ort, device: cpu, threads: 1, options: {graph_optimization_level: all}}
    timing:                          # timing settings (scaleprof.profile.TimingSettings) + layers
      min_time_s: 1.0
      layers: true                   # per-layer profiles (a separate run per point)
    budget_ms: [10, 50]              # optional: latency budgets the report answers for

Every point of the grid is models x strategies (x alpha for dWr) x scales x resolutions x
batch_sizes x precisions x targets. An unscaled point is strategy "none" (or scale 1 of any strategy).
Configs written before ``timing:`` was named so call it ``profile:``; that is still read, with a
one-line notice on stderr. ``resolve_config`` also finds the configs shipped in scaleprof/configs
by name (``demo``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path

from scaleprof.core.files import read_limited
from scaleprof.core.limits import MAX_RESOLUTION, MIN_RESOLUTION, check_batch, check_threads
from scaleprof.core.onnx_file import PRECISIONS
from scaleprof.engines.backends import BACKENDS, BUILDS
from scaleprof.engines.devices import DEVICE_PATTERN
from scaleprof.errors import BadInput, nearest
from scaleprof.models.strategies import check_scale, parse_strategy
from scaleprof.profile.timing import validate_settings
from scaleprof.profile.types import TimingSettings
from scaleprof.sweep.bounded_yaml import MAX_CONFIG_BYTES, load_yaml
from scaleprof.sweep.config import (
    DEFAULT_ALPHA,
    PRESET_PRECISION,
    PRESETS,
    TIMING_KEYS,
    Point,
    SweepConfig,
    Target,
    unique,
)

__all__ = ["PRESETS", "Point", "SweepConfig", "Target", "from_dict", "load_config", "parse_config",
           "resolve_config", "shipped_configs"]

TOP_KEYS = ("name", "models", "strategies", "alpha", "scales", "batch_sizes", "resolutions",
            "precisions", "targets", "timing", "budget_ms")
REQUIRED = ("models", "strategies", "scales", "targets")
TARGET_KEYS = ("name", "backend", "device", "threads", "options")
TIMING_SECTION_KEYS = TIMING_KEYS + ("layers",)
OLD_TIMING_KEY = "profile"          # what ``timing:`` was called before
POSITIVE_TIMING = ("min_iters", "min_time_s", "max_time_s", "layer_iters", "target_ci", "rounds",
                   "control_tolerance")   # the rest may be 0
MAX_NAME = 100                      # characters of a sweep or target name
MAX_POINTS = 20_000                 # points of one grid: at a few seconds each, days of measuring


# ----------------------------------------------------------------------------------- loading

def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file; any problem is one BadInput line naming the file."""
    path = Path(path)
    try:
        text = read_limited(path, MAX_CONFIG_BYTES, "sweep config").decode("utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such config file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: cannot read the config ({err})") from None
    return parse_config(text, default_name=path.stem, where=str(path))


def resolve_config(name: str) -> SweepConfig:
    """A config file's path, or the stem of a config shipped in scaleprof/configs (e.g. 'demo')."""
    path = Path(name)
    if not path.exists() and not path.suffix:
        shipped = _shipped_folder().joinpath(f"{name}.yaml")
        if shipped.is_file():
            return load_config(Path(str(shipped)))
        names = shipped_configs()
        raise BadInput(f"{name}: no such config file, nor a shipped config{nearest(name, names)}; "
                       f"shipped: {', '.join(names)}")
    return load_config(path)


def shipped_configs() -> list[str]:
    """The names ``resolve_config`` knows besides paths."""
    return sorted(p.name[:-5] for p in _shipped_folder().iterdir() if p.name.endswith(".yaml"))


def _shipped_folder():
    return resources.files("scaleprof").joinpath("configs")


def parse_config(text: str, default_name: str = "sweep", where: str = "config") -> SweepConfig:
    data = load_yaml(text, where)
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a mapping of keys ({', '.join(REQUIRED)}, ...), "
                       f"got {type(data).__name__ if data is not None else 'an empty file'}")
    return from_dict(data, default_name=default_name, where=where, source=text)


def from_dict(data: dict, default_name: str = "sweep", where: str = "config",
              source: str = "") -> SweepConfig:
    def fail(message: str):
        raise BadInput(f"{where}: {message}")

    timing_key = _timing_key(data, fail)
    _check_keys({k: v for k, v in data.items() if k != OLD_TIMING_KEY}, TOP_KEYS, "", fail)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        fail(f"missing required key{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")

    name = _check_name(data.get("name", default_name), fail)

    axes = _grid_axes(data, fail)
    targets = _targets(data["targets"], fail)
    timing, layers = _timing(data.get(timing_key, {}), timing_key, fail)
    budget = tuple(_num_list(data["budget_ms"], "budget_ms", fail, float)) if "budget_ms" in data else ()
    if any(not 0 < b < math.inf for b in budget):
        fail("budget_ms: budgets must be positive, finite milliseconds")

    config = SweepConfig(name=name, targets=targets, timing=timing, layers=layers, budget_ms=budget,
                         source=source, **{axis: tuple(unique(values)) for axis, values in axes.items()})
    size = config.size_bound()
    if size > MAX_POINTS:
        fail(f"the grid has up to {size:,} points, above the {MAX_POINTS:,} one sweep may hold (each is exported, "
             "built and timed): split it into several sweeps")
    if not config.points():
        fail("the grid is empty: no target takes any of the precisions "
             f"({', '.join(axes['precisions'])}; {', '.join(f'{k} is {v}-only' for k, v in PRESET_PRECISION.items())}; "
             f"{_builds_text()})")
    if timing_key == OLD_TIMING_KEY:        # said once the config is known to be valid: errors stay one line
        print(f"{where}: note: '{OLD_TIMING_KEY}:' is now called 'timing:'; read as 'timing:' (rename it)",
              file=sys.stderr)
    return config


def _builds_text() -> str:
    return "; ".join(f"{backend} builds {'/'.join(precisions)}" for backend, precisions in BUILDS.items())


def _check_name(name, fail) -> str:
    """The sweep's name, which also names its output folder (DEFAULT_OUT/NAME): a plain file name."""
    if not isinstance(name, str) or not name.strip():
        fail("name: expected a non-empty string")
    name = name.strip()
    if name in (".", "..") or any(c in name for c in "/\\") or not _is_label(name):
        fail(f"name: {_show(name)} is not a plain name of at most {MAX_NAME} characters (no '/', '\\', "
             "control characters, '.' or '..'): it names the output folder")
    return name


def _is_label(text: str) -> bool:
    """Short enough for a table and free of control characters (a newline would split an error line)."""
    return len(text) <= MAX_NAME and not any(ord(c) < 32 or ord(c) == 127 for c in text)


def _show(value, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters (a hostile value may be huge)."""
    try:
        text = repr(value)
    except ValueError:                  # an int too long for Python to print
        text = f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _grid_axes(data: dict, fail) -> dict[str, list]:
    """The grid's axes besides targets, validated (SweepConfig's field names -> values)."""
    models = _str_list(data["models"], "models", fail)
    strategies = _str_list(data["strategies"], "strategies", fail)
    for s in strategies:
        _check_strategy(s, fail)
    alpha = _num_list(data.get("alpha", DEFAULT_ALPHA), "alpha", fail, float)
    for a in alpha:
        if not 0 < a <= 1:
            fail(f"alpha: {a:g} is outside (0, 1]")
    scales = _num_list(data["scales"], "scales", fail, float)

    for s in scales:
        _limit(check_scale, s, "scales", fail)
    for key, values in (("scales", scales), ("alpha", alpha)):
        _distinct_keys(values, key, fail)
    batch_sizes = _num_list(data.get("batch_sizes", 1), "batch_sizes", fail, int)
    for b in batch_sizes:
        _limit(check_batch, b, "batch_sizes", fail)
    resolutions = _resolutions(data.get("resolutions", "auto"), fail)
    precisions = _str_list(data.get("precisions", "fp32"), "precisions", fail)
    for p in precisions:
        if p not in PRECISIONS:
            fail(f"precisions: unknown precision {_show(p)}{nearest(p, PRECISIONS)}; valid: {', '.join(PRECISIONS)}")
    return {"models": models, "strategies": strategies, "alpha": alpha,
            "scales": scales, "batch_sizes": batch_sizes, "resolutions": resolutions, "precisions": precisions}


def _distinct_keys(values: list[float], key: str, fail) -> None:
    """Points are keyed by a value's six significant digits (``{:g}``): two values that differ only
    beyond them would be stored as one point under one label, measured for the other."""
    seen: dict[str, float] = {}
    for value in values:
        text = f"{value:g}"
        if text in seen and seen[text] != value:
            fail(f"{key}: {seen[text]!r} and {value!r} are the same point to six significant digits (x{text}); "
                 "give one of them")
        seen[text] = value


def _limit(check, value, key: str, fail):
    """``check(value, key)`` (a scaleprof.core.limits check), its BadInput said as this config's."""
    try:
        return check(value, key)
    except BadInput as err:
        fail(str(err))


def _check_strategy(name: str, fail) -> None:
    """Named strategies, pycls weights (d1_w8_r1), "en" (scaleprof.models.strategies), or "none"."""
    if name == "none":
        return

    try:
        parse_strategy(name)
    except BadInput as err:                 # its message names the nearest strategies
        fail(f"strategies: {err}")


def _check_keys(data: dict, valid, prefix: str, fail) -> None:
    for key in data:
        if key not in valid:
            fail(f"unknown key {_show(prefix + str(key))}{nearest(key, valid)}; valid keys: {', '.join(valid)}")


def _as_list(value, key: str, fail) -> list:
    items = value if isinstance(value, list) else [value]
    if not items or value is None:
        fail(f"{key}: the list is empty; give at least one value")
    return items


def _str_list(value, key: str, fail) -> list[str]:
    items = _as_list(value, key, fail)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            fail(f"{key}: expected names (strings), got {_show(item)}")
    return [i.strip() for i in items]


def _is_number(item, kind) -> bool:
    """A YAML number (not a bool) that ``kind`` (int or float) holds exactly: 2.0 is an int, .inf is not;
    an integer beyond what a float holds (10**400) is none."""
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return False
    try:
        value = float(item)
    except OverflowError:
        return False
    return kind is float or value.is_integer()


def _num_list(value, key: str, fail, kind) -> list:
    out = []
    for item in _as_list(value, key, fail):
        if not _is_number(item, kind):
            fail(f"{key}: expected {'integers' if kind is int else 'numbers'}, got {_show(item)}")
        out.append(kind(item))
    return out


def _resolutions(value, fail) -> list[int | None]:
    out = []
    for item in _as_list(value, "resolutions", fail):
        if item == "auto":
            out.append(None)
        elif isinstance(item, int) and not isinstance(item, bool) and MIN_RESOLUTION <= item <= MAX_RESOLUTION:
            out.append(item)
        else:
            fail(f"resolutions: expected 'auto' or a pixel size from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
                 f"got {_show(item)}")
    return out


def _targets(value, fail) -> tuple[Target, ...]:
    targets = []
    for item in _as_list(value, "targets", fail):
        if isinstance(item, str):
            if item not in PRESETS:
                fail(f"targets: unknown preset {_show(item)}{nearest(item, PRESETS)}; presets: "
                     f"{', '.join(PRESETS)} (or a mapping with {', '.join(TARGET_KEYS)})")
            targets.append(PRESETS[item])
            continue
        if not isinstance(item, dict):
            fail(f"targets: expected a preset name or a mapping, got {_show(item)}")
        _check_keys(item, TARGET_KEYS, "targets.", fail)
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or not _is_label(name.strip()):
            fail(f"targets: every target needs a name of at most {MAX_NAME} characters (no control "
                 f"characters), got {_show(item)}")
        preset = PRESETS.get(name)
        backend = item.get("backend", preset.backend if preset else None)
        if backend is None:
            fail(f"targets.{name}: missing key 'backend' ({', '.join(BACKENDS)})")
        if backend not in BACKENDS:
            fail(f"targets.{name}: unknown backend {_show(backend)}{nearest(backend, BACKENDS)}; "
                 f"valid: {', '.join(BACKENDS)}")
        device = item.get("device", preset.device if preset else "cpu")
        if not isinstance(device, str) or not DEVICE_PATTERN.fullmatch(device):
            fail(f"targets.{name}: device must be 'cpu', 'cuda' or 'cuda:N', got {_show(device)}")
        threads = _limit(check_threads, item.get("threads"), f"targets.{name}.threads", fail)
        options = item.get("options") or {}
        if not isinstance(options, dict):
            fail(f"targets.{name}: options must be a mapping, got {_show(options)}")
        targets.append(Target(name.strip(), backend, device, threads,
                              tuple(sorted((str(k), _freeze(v)) for k, v in options.items()))))
    names = [t.name for t in targets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        fail(f"targets: duplicate target name {_show(dupes[0])}; each target needs its own name")
    return tuple(targets)


def _freeze(value):
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    return value


def _timing_key(data: dict, fail) -> str:
    """The key the timing settings are under: ``timing``, or the old ``profile`` (with a notice)."""
    if OLD_TIMING_KEY not in data:
        return "timing"
    if "timing" in data:
        fail(f"both 'timing' and '{OLD_TIMING_KEY}' are given; '{OLD_TIMING_KEY}' is the old name of "
             "'timing': keep only 'timing'")
    return OLD_TIMING_KEY


def _timing(value, key: str, fail) -> tuple[TimingSettings, bool]:
    """TimingSettings and whether to profile layers, from the mapping under ``key`` (errors name it;
    an empty ``key:`` means the defaults, a 0 or false is not a mapping)."""
    value = {} if value is None else value
    if not isinstance(value, dict):
        fail(f"{key}: expected a mapping of timing settings, got {_show(value)}")
    _check_keys(value, TIMING_SECTION_KEYS, f"{key}.", fail)
    layers = value.get("layers", True)
    if not isinstance(layers, bool):
        fail(f"{key}.layers: expected true or false, got {_show(layers)}")
    settings = {}
    defaults = TimingSettings()
    for name in TIMING_KEYS:
        if name not in value:
            continue
        item = value[name]
        kind = type(getattr(defaults, name))
        if not _is_number(item, kind):
            fail(f"{key}.{name}: expected {'an integer' if kind is int else 'a number'}, got {_show(item)}")
        if not math.isfinite(item) or item < 0 or (name in POSITIVE_TIMING and item <= 0):
            fail(f"{key}.{name}: {_show(item)} must be {'positive' if name in POSITIVE_TIMING else 'zero or more'} "
                 "and finite")
        settings[name] = kind(item)
    timing = replace(defaults, **settings)
    if timing.max_time_s < timing.min_time_s:
        fail(f"{key}.max_time_s ({timing.max_time_s:g}) is below min_time_s ({timing.min_time_s:g})")

    try:
        validate_settings(timing)
    except BadInput as err:
        fail(f"{key}: {err}")
    return timing, layers
