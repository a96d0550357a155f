"""From measured points to calibrations, and the questions asked of one: a configuration's predicted
latency, and whether a calibration belongs to the environment this machine would measure in."""

from __future__ import annotations

import time
from dataclasses import dataclass

from scaleprof.engines.backends import backend_for
from scaleprof.errors import BadInput, ScaleprofError, nearest
from scaleprof.predict.evaluate import evaluate
from scaleprof.predict.network_fit import MIN_POINTS, Calibration, Prediction, fit_batch, fit_key
from scaleprof.predict.samples import distinct, features_for, load_points, sample_from_point, spec_for
from scaleprof.profile.environment import capture_environment


def calibrate(samples, target: str, env_key: str, environment: dict | None = None, target_config: dict | None = None,
              source: str = "", with_evaluation: bool = True, use_layers: bool = True) -> Calibration:
    """Fit every (precision, batch) of one target's samples that has MIN_POINTS networks, a pooled fit
    per precision, and (with_evaluation) the held-out evaluation of each."""
    samples = [s for s in samples if s.target == target and s.env_key == env_key]
    fits, evaluations = {}, []
    for precision in sorted({s.precision for s in samples}):
        same = [s for s in samples if s.precision == precision]
        for batch in sorted({s.batch for s in same}):
            group = [s for s in same if s.batch == batch]
            if len(distinct(group)) < MIN_POINTS:
                continue
            fits[fit_key(precision, batch)] = fit_batch(group, use_layers)
            if with_evaluation and len(distinct(group)) >= MIN_POINTS + 2:
                evaluations.append(evaluate(group, use_layers).to_dict())
        usable = [s for s in same if fit_key(precision, s.batch) in fits]
        if len({s.batch for s in usable}) > 1:
            fits[fit_key(precision, None)] = fit_batch(usable, use_layers)
    if not fits:
        raise BadInput(f"too few points to calibrate {target!r}: {len(distinct(samples))} distinct network(s) "
                       f"measured per batch at most, {MIN_POINTS} needed (measure more scales or strategies)")
    used = [s for s in samples if fit_key(s.precision, s.batch) in fits]
    return Calibration(target=target, env_key=env_key, fits=fits, environment=dict(environment or {}),
                       target_config=dict(target_config or {"name": target}),
                       families=tuple(sorted({s.family for s in used})), models=tuple(sorted({s.model for s in used})),
                       points=tuple({"label": s.label, "batch": s.batch, "precision": s.precision,
                                     "latency_ms": s.latency_ms} for s in distinct(used)),
                       evaluation=tuple(evaluations), source=str(source), created=time.time())


def calibrate_source(path, target: str | None = None, env_key: str | None = None,
                     with_evaluation: bool = True, use_layers: bool = True) -> list[Calibration]:
    """One calibration per (target, environment) in a sweep directory or results.json; ``target`` and
    ``env_key`` restrict them. BadInput for a target the source does not hold, or too few points."""
    points, environments, where = load_points(path)
    targets = sorted({p.target for p in points})
    if target is not None and target not in targets:
        raise BadInput(f"target {target!r} is not in {where}{nearest(target, targets)}; "
                       f"measured targets: {', '.join(targets) or 'none'}")
    chosen = [p for p in points if (target is None or p.target == target)
              and (env_key is None or p.env_key == env_key)]
    if not chosen:
        raise BadInput(f"{where}: no measured points" + (f" of {target!r}" if target else "")
                       + (f" in environment {env_key}" if env_key else ""))
    faithful = [p for p in chosen if not p.contended]      # a contended latency would carry its error on
    if not faithful:
        raise BadInput(f"{where}: all {len(chosen)} points were measured under contention: nothing to calibrate "
                       "from; time them again with `scaleprof sweep CONFIG --remeasure-noisy`")
    samples = [sample_from_point(p) for p in faithful]
    envs = {(e["target"].get("name"), e["env_key"]): e for e in environments}
    found = []
    for name, key in sorted({(s.target, s.env_key) for s in samples}):
        env = envs.get((name, key), {})
        found.append(calibrate(samples, name, key, env.get("environment"), env.get("target"), where,
                               with_evaluation=with_evaluation, use_layers=use_layers))
    return found


@dataclass(frozen=True)
class Query:
    model: str
    strategy: str | None
    scale: float
    alpha: float | None = None
    batch: int = 1
    resolution: int | None = None          # None: what the strategy chose
    precision: str = "fp32"

    @property
    def label(self) -> str:
        if not self.strategy or self.strategy == "none":
            return self.model
        strategy = f"{self.strategy}({self.alpha:g})" if self.alpha is not None else self.strategy
        return f"{self.model} {strategy} x{self.scale:g}"


def predict_query(cal: Calibration, query: Query) -> tuple:
    """(spec, features, Prediction) of one configuration: counted, never exported or run."""
    cal.check(query.model, query.precision, query.batch)
    spec = spec_for(query.model, query.strategy, query.scale, query.alpha)
    features = features_for(spec, query.resolution or spec.resolution)
    return spec, features, cal.predict(features, query.batch, query.precision, query.model)


def current_environment_key(cal: Calibration) -> str | None:
    """The environment key this machine would record for the calibration's target, or None when the
    target's backend or device is not here (a GPU target on a CPU machine): then nothing can be compared."""
    config = cal.target_config or {}
    backend, device = config.get("backend"), config.get("device", "cpu")
    if not backend or device != "cpu":
        return None
    try:
        engine_backend = backend_for(backend, device)
        env = capture_environment(engine_backend.name, engine_backend.version(), device, config.get("threads"),
                                  engine_backend.device_name(device))
    except ScaleprofError:
        return None
    return env.key


def check_environment(cal: Calibration) -> None:
    """BadInput when this machine can measure the target and would do so in another environment."""
    here = current_environment_key(cal)
    if here is None or here == cal.env_key:
        return
    env = cal.environment or {}
    raise BadInput(f"the calibration of {cal.target!r} comes from another environment ({cal.env_key}: "
                   f"{env.get('device_name', '?')}, {env.get('backend', '?')} {env.get('backend_version', '?')}, "
                   f"host {env.get('host', '?')}); this machine is {here}: calibrate here, or pass "
                   "--any-environment to predict for that one")


def describe(prediction: Prediction) -> str:
    text = (f"{prediction.latency_ms:.4g} ms (interval {prediction.low_ms:.4g} - {prediction.high_ms:.4g} ms, "
            f"fit: {prediction.batch_fit})")
    if prediction.extrapolation:
        text += "; EXTRAPOLATION: " + "; ".join(prediction.extrapolation)
    return text
