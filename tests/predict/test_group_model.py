"""The latency model recovers known per-group costs from synthetic measurements."""

import pytest

from tests.predict.synthetic import TRUE, TRUE_C0, network, samples, true_group_times, true_latency

from scaleprof.predict.group_model import LatencyModel, fit, fit_end_to_end, fit_from_layers, nnls_relative


def test_nnls_relative_solves_a_consistent_system_exactly():
    rows = [[1, 2, 0], [1, 0, 3], [2, 1, 1], [1, 1, 1]]
    truth = [0.5, 0.25, 2.0]
    coef = nnls_relative(rows, [sum(a * b for a, b in zip(r, truth)) for r in rows])
    assert coef == pytest.approx(truth, rel=1e-9)


def test_coefficients_are_never_negative():
    # latency falling with a feature would need a negative cost: the fit sets it to zero instead
    coef = nnls_relative([[1, 1], [1, 2], [1, 3]], [3.0, 2.0, 1.0])
    assert min(coef) >= 0


def test_per_layer_profiles_recover_each_groups_rates():
    model = fit_from_layers(samples())
    for group in ("conv", "elementwise", "pooling"):
        assert model.coefficients[group] == pytest.approx(TRUE[group], rel=1e-6, abs=1e-15), group
    assert model.kappa == pytest.approx(1.0, rel=1e-6)
    assert model.c0 == pytest.approx(TRUE_C0, rel=1e-6)
    probe = network(depth=1.7, width=1.3, res=1.2)                  # a network no sample has
    for group, ms in true_group_times(probe).items():
        assert model.group_times(probe, 1)[group] == pytest.approx(ms, rel=1e-5), group
    assert model.predict(probe, 1) == pytest.approx(true_latency(probe), rel=1e-6)


def test_a_few_profiled_networks_are_enough():
    few = [s for s in samples() if s.strategy in ("d", "w", "r") and s.scale in (2.0, 4.0)]   # 6 networks
    model = fit(few)
    assert model.method == "per-layer profiles"
    probe = network(depth=2.0, width=1.5, res=1.3)
    assert model.predict(probe, 8) == pytest.approx(true_latency(probe, 8), rel=1e-4)


def test_end_to_end_fit_reproduces_its_points_and_scales_with_the_batch():
    train = samples(with_layers=False)
    model = fit(train)
    assert model.method == "end-to-end"
    for s in train:
        assert model.predict(s.features, s.batch) == pytest.approx(s.latency_ms, rel=1e-3)


def test_end_to_end_correction_absorbs_a_profiler_overhead():
    # profiled layer times 25% above the end-to-end latency: kappa brings them back
    slow = samples()
    measured = [s.__class__(**{**s.__dict__, "layer_times": {g: 1.25 * t for g, t in s.layer_times.items()}})
                for s in slow]
    model = fit_from_layers(measured)
    assert model.kappa == pytest.approx(0.8, rel=1e-6)
    probe = network(1.5, 1.5, 1.0)
    assert model.predict(probe, 1) == pytest.approx(true_latency(probe), rel=1e-6)


def test_model_round_trips_through_a_dict():
    model = fit(samples())
    again = LatencyModel.from_dict(model.to_dict())
    probe = network(2, 1, 1)
    assert again.predict(probe, 4) == model.predict(probe, 4)
    assert fit_end_to_end(samples()).to_dict()["method"] == "end-to-end"
