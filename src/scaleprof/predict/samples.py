"""Measured points as the predictor sees them (Sample), read from a results store or from the
results.json a report wrote, and the per-user cache of scaled specs and network features.

Features come from counting each point's spec (scaleprof.complexity.count_spec, on the meta device);
they are cached by spec, resolution and the scaleprof/timm versions, so a store is counted once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from scaleprof import __version__
from scaleprof.core.files import user_cache_dir, write_atomic
from scaleprof.errors import BadInput
from scaleprof.models import ModelSpec, base_spec, family_of, scale_spec
from scaleprof.predict.features import FEATURES_VERSION, NetworkFeatures, spec_features
from scaleprof.predict.group_model import PROFILE_GROUPS
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.store import STORE_NAME, Store


def cache_root() -> Path | None:
    """$SCALEPROF_CACHE_DIR, else $XDG_CACHE_HOME/scaleprof, else ~/.cache/scaleprof; None when none
    is usable (scaleprof.core.files.user_cache_dir)."""
    return user_cache_dir()


def _versions() -> list[str]:
    found = [__version__]
    for dist in ("timm",):
        try:
            found.append(metadata.version(dist))
        except metadata.PackageNotFoundError:
            found.append("-")
    return found


def cached_json(kind: str, ident: list, compute: Callable[[], dict]) -> dict:
    """A JSON-able result cached under cache_root()/kind, keyed by ``ident`` and the versions that
    determine it. A cache that cannot be read or written only makes things slower."""
    key = hashlib.sha256(json.dumps([kind, ident, _versions()], sort_keys=True, default=str).encode()).hexdigest()[:24]
    if cache_root() is None:
        return compute()
    path = cache_root() / kind / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    data = compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data, sort_keys=True))
    except OSError:
        pass
    return data


def spec_for(model: str, strategy: str | None, scale: float, alpha: float | None = None):
    """The ModelSpec of a configuration (cached: reading a base model's architecture imports timm and the
    scaling search counts networks; neither is needed again for the same configuration)."""
    family_of(model)                                   # an unknown model: one line, before any cache
    if not strategy or strategy == "none" or float(scale) == 1.0:
        data = cached_json("specs", [model, None, None, 1.0], lambda: base_spec(model).to_dict())
    else:
        data = cached_json("specs", [model, strategy, alpha, float(scale)],
                           lambda: scale_spec(model, strategy, float(scale), alpha).to_dict())
    return ModelSpec.from_dict(data)


def features_for(spec, resolution: int | None = None) -> NetworkFeatures:
    resolution = int(resolution or spec.resolution)
    data = cached_json(f"features-v{FEATURES_VERSION}", [spec.to_dict(), resolution],
                       lambda: spec_features(spec, resolution).to_dict())
    return NetworkFeatures.from_dict(data)


@dataclass(frozen=True)
class Sample:
    """One measured point: its configuration, its features and what was measured."""

    target: str
    env_key: str
    model: str
    family: str
    strategy: str
    alpha: float | None
    scale: float
    resolution: int
    batch: int
    precision: str
    latency_ms: float
    features: NetworkFeatures
    ci95: tuple = ()
    cv: float | None = None
    layer_times: dict = field(default_factory=dict)     # feature group -> ms per batch (profiled run)

    @property
    def label(self) -> str:
        strategy = f"{self.strategy}({self.alpha:g})" if self.alpha is not None and self.strategy == "dWr" \
            else self.strategy
        return f"{self.model} {strategy} x{self.scale:g} @{self.resolution} b{self.batch}"

    @property
    def flops(self) -> int:
        return self.features.flops

    @property
    def network(self) -> tuple:
        """Identity of the measured network and shape (s = 1 of every strategy is one network)."""
        return (self.model, self.features.signature(), self.batch, self.precision)


def distinct(samples) -> list:
    """One sample per measured network (the first), in order."""
    seen, out = set(), []
    for s in samples:
        if s.network not in seen:
            seen.add(s.network)
            out.append(s)
    return out


def layer_times(layers) -> dict:
    """A profile's LayerRows -> ms per feature group (layers that did not execute are left out)."""
    times: dict[str, float] = {}
    for layer in layers:
        if layer.status == "not-executed":
            continue
        group = PROFILE_GROUPS.get(layer.category, "overhead")
        times[group] = times.get(group, 0.0) + float(layer.time_ms or 0.0)
    return times


def _family(model: str) -> str:
    return family_of(model).name


def sample_from_point(point: PointResult) -> Sample:
    """A Sample from a measured point (a results store's, or a results.json row's)."""
    if point.spec:
        spec = ModelSpec.from_dict(point.spec)
    else:
        spec = spec_for(point.model, point.strategy, float(point.scale), point.alpha)
    features = features_for(spec, point.resolution)
    if point.flops and abs(features.flops - int(point.flops)) > 0.005 * int(point.flops):
        raise BadInput(f"{point.model} {point.strategy} x{point.scale}: the recorded flops "
                       f"({point.flops}) are not what this scaleprof counts ({features.flops}); "
                       "calibrate from a store written by this version")
    latency = point.latency
    return Sample(target=point.target, env_key=point.env_key, model=point.model, family=_family(point.model),
                  strategy=point.strategy, alpha=point.alpha, scale=float(point.scale),
                  resolution=int(point.resolution), batch=int(point.batch), precision=point.precision,
                  latency_ms=float(latency.median), features=features,
                  ci95=tuple(float(c) for c in latency.ci95 or () if c is not None),
                  cv=latency.cv, layer_times=layer_times(point.layer_rows))


def load_points(path) -> tuple[list[PointResult], list[dict], str]:
    """(points, environments, description) from a sweep directory (results.sqlite) or a results.json."""
    path = Path(path)
    if path.is_file() and path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
            points = [PointResult.from_flat(row) for row in data["points"]]
            return points, list(data.get("environments") or []), str(path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise BadInput(f"{path}: not a results.json written by `scaleprof report` ({err})") from None

    if not (path / STORE_NAME).is_file():
        raise BadInput(f"{path}: no results store here ({STORE_NAME}) and not a results.json; "
                       "run `scaleprof sweep CONFIG -o DIR` first")
    with Store(path, create=False) as store:
        return store.points("ok", with_layers=True), store.environments(), str(path)
