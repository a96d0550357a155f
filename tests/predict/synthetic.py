"""Synthetic networks with known per-group costs, stores of them, and seeded caches, so that the predict
tests (and the CLI they run in subprocesses) never count a real network."""

from __future__ import annotations

from scaleprof.predict.features import FEATURES_VERSION, GroupWork, NetworkFeatures
from scaleprof.predict.group_model import OVERHEAD, group_terms
from scaleprof.predict.samples import Sample, cached_json
from scaleprof.profile.types import LatencyStats
from scaleprof.sweep.result import PointResult
from scaleprof.sweep.store import Store

# ms per layer, per flop, per byte: the "true" target the fits must recover
TRUE = {"conv": [0.010, 2e-8, 1e-9], "depthwise conv": [0.004, 5e-8, 3e-9], "SE": [0.002, 0.0, 2e-9],
        "elementwise": [0.003, 0.0, 1.5e-9], "pooling": [0.001, 0.0, 1e-9], "linear": [0.005, 1e-8, 1e-9],
        OVERHEAD: [0.001, 0.0, 2e-10]}
TRUE_C0 = 0.3


def network(depth: float = 1.0, width: float = 1.0, res: float = 1.0) -> NetworkFeatures:
    """An EfficientNet-like network scaled in depth, width and resolution (counts per image)."""
    layers = lambda n: max(1, round(n * depth))  # noqa: E731
    px = res * res
    groups = {
        "conv": GroupWork(layers(33), int(350e6 * depth * width ** 2 * px), int(7.7e6 * depth * width * px),
                          int(3.1e6 * depth * width ** 2)),
        "depthwise conv": GroupWork(layers(16), int(35e6 * depth * width * px), int(6.1e6 * depth * width * px),
                                    int(0.18e6 * depth * width)),
        "SE": GroupWork(layers(96), int(0.6e6 * depth * width ** 2), int(6.9e6 * depth * width * px),
                        int(0.6e6 * depth * width ** 2)),
        "elementwise": GroupWork(layers(33), 0, int(12.3e6 * depth * width * px), 0),
        "pooling": GroupWork(1, 0, int(64e3 * width * px), 0),
        "linear": GroupWork(1, int(1.28e6 * width), int(2.3e3 * width), int(1.28e6 * width)),
    }
    flops = sum(g.flops for g in groups.values())
    return NetworkFeatures(groups=groups, flops=flops, params=int(5.3e6 * depth * width ** 2),
                           acts=int(6.7e6 * depth * width * px), resolution=int(224 * res))


def true_group_times(features: NetworkFeatures, batch: int = 1) -> dict:
    terms = group_terms(features, batch)
    return {g: sum(c * t for c, t in zip(TRUE[g], terms[g])) for g in terms}


def true_latency(features: NetworkFeatures, batch: int = 1) -> float:
    return TRUE_C0 + sum(true_group_times(features, batch).values())


# strategy -> exponents of (depth, width, resolution) in s, as the named strategies split flops
STRATEGIES = {"d": (1, 0, 0), "w": (0, 0.5, 0), "r": (0, 0, 0.5), "dw": (0.5, 0.25, 0), "dr": (0.5, 0, 0.25),
              "wr": (0, 0.25, 0.25), "dwr": (1 / 3, 1 / 6, 1 / 6)}


def exponents(strategy: str, alpha: float | None = None) -> tuple:
    if strategy == "dWr":
        return (1 - alpha) / 2, alpha / 2, (1 - alpha) / 4
    return STRATEGIES[strategy]


def configurations(strategies=("d", "w", "r", "dw", "dr", "wr", "dwr"), scales=(1, 2, 4), alpha=None):
    for strategy in strategies:
        ed, ew, er = exponents(strategy, alpha)
        for s in scales:
            yield strategy, float(s), network(s ** ed, s ** ew, s ** er)


def samples(strategies=("d", "w", "r", "dw", "dr", "wr", "dwr"), scales=(1, 2, 4), batch=1, target="cpu-ort",
            with_layers=True, scale_latency=1.0):
    out = []
    for strategy, s, f in configurations(strategies, scales):
        times = true_group_times(f, batch) if with_layers else {}
        out.append(Sample(target=target, env_key="env0", model="efficientnet_b0", family="efficientnet",
                          strategy=strategy, alpha=None, scale=s, resolution=f.resolution, batch=batch,
                          precision="fp32", latency_ms=true_latency(f, batch) * scale_latency, features=f,
                          ci95=(0.99 * true_latency(f, batch), 1.01 * true_latency(f, batch)), layer_times=times))
    return out


def spec_dict(strategy: str, s: float, f: NetworkFeatures, alpha: float | None = None) -> dict:
    """A ModelSpec's dict (the arch only names the synthetic network: it is never built)."""
    from scaleprof.models import ModelSpec

    name = "base" if s == 1 else [strategy, alpha, s]
    return ModelSpec(model="efficientnet_b0", family="efficientnet", strategy=None if s == 1 else strategy,
                     alpha=None if s == 1 else alpha, scale=s, resolution=f.resolution,
                     arch={"synthetic": name}).to_dict()


def seed_caches(strategies=("d", "w", "r", "dw", "dr", "wr", "dwr"), scales=(1, 2, 4, 8, 16), alphas=()) -> None:
    """Put the specs and features of the synthetic configurations (and of dWr at ``alphas``) in the
    (per-test) user cache, where spec_for/features_for look first: nothing is counted. Call with
    SCALEPROF_CACHE_DIR set."""
    lines = [(st, None) for st in strategies] + [("dWr", a) for a in alphas]
    for strategy, alpha in lines:
        for _, s, f in configurations((strategy,), scales, alpha):
            spec = spec_dict(strategy, s, f, alpha)
            ident = ["efficientnet_b0", None, None, 1.0] if s == 1 else ["efficientnet_b0", strategy, alpha, s]
            cached_json("specs", ident, lambda spec=spec: spec)
            cached_json(f"features-v{FEATURES_VERSION}", [spec, f.resolution], lambda f=f: f.to_dict())


def fill_store(directory, strategies=("d", "w", "r", "dw", "dr", "wr", "dwr"), scales=(1, 2, 4),
               target="cpu-ort", env_key="env0", backend="ort", device="cpu", slower=1.0) -> None:
    """A results store of the synthetic configurations (true latencies x ``slower``, no per-layer rows)."""
    with Store(directory) as store:
        sweep = store.begin_sweep("synthetic-predict", {"name": "synthetic-predict"})
        store.put_environment(env_key, {"name": target, "backend": backend, "device": device, "threads": None,
                                        "options": {}},
                              {"backend": backend, "backend_version": "0", "device": device,
                               "device_name": "Synthetic", "threads": None, "host": "test", "versions": {}})
        for strategy, s, f in configurations(strategies, scales):
            lat = true_latency(f) * slower
            store.put_point(PointResult(
                point_key=f"{strategy}|{s:g}", target=target, env_key=env_key, status="ok", model="efficientnet_b0",
                strategy=strategy, alpha=None, scale=s, resolution=f.resolution, batch=1, precision="fp32",
                backend=backend, device=device, spec=spec_dict(strategy, s, f), flops=f.flops, params=f.params,
                acts=f.acts, latency=LatencyStats(median=lat, batch=1, cv=0.01, ci95=(0.99 * lat, 1.01 * lat))), sweep)
        store.end_sweep(sweep)


def bisection_scales(low: float = 1.0, high: float = 16.0, steps: int = 3) -> set[float]:
    """Every s the recommendation search can visit (coarse doubling grid, then bisection on log s), so that
    seeding them keeps the search on synthetic networks."""
    import math

    found = set()

    def visit(a, b, depth):
        if depth == 0:
            return
        mid = float(f"{math.sqrt(a * b):.3g}")
        if a < mid < b:
            found.add(mid)
            visit(a, mid, depth - 1)
            visit(mid, b, depth - 1)
    s = low
    while s < high:
        found.add(s)
        visit(s, 2 * s, steps)
        s *= 2
    return found | {high}
