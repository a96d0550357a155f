"""Held-out evaluation: splits never test on a training network; the structural model is compared with the
best single-metric fit on the same split."""

from tests.predict.synthetic import samples

from scaleprof.predict.evaluate import (best_single_metric, evaluate, leave_largest_scale_out, leave_one_strategy_out,
                                        select_calibration, small_calibration, structural_score)
from scaleprof.predict.samples import distinct


def test_the_base_network_counts_once():
    pool = samples()                                   # 7 strategies x s in {1, 2, 4}: s = 1 is one network
    assert len(pool) == 21
    assert len(distinct(pool)) == 15


def test_leave_one_strategy_out_holds_out_only_unseen_networks():
    splits = leave_one_strategy_out(samples())
    assert len(splits) == 7
    for split in splits:
        held = split.name.split()[-1]
        train = {s.network for s in split.train}
        assert all(s.strategy != held for s in split.train)
        assert all(s.strategy == held for s in split.test)
        assert not train & {s.network for s in split.test}
    # the base network is tested once, when the strategy that first listed it is held out
    assert sum(1 for split in splits for s in split.test if s.scale == 1.0) == 1


def test_leave_largest_scale_out_extrapolates():
    (split,) = leave_largest_scale_out(samples())
    assert {s.scale for s in split.test} == {4.0}
    assert max(s.scale for s in split.train) == 2.0


def test_small_calibration_picks_spread_networks_and_tests_the_rest():
    pool = samples()
    chosen = select_calibration(pool, 8)
    assert len(chosen) == 8 and len({s.network for s in chosen}) == 8
    assert min(s.flops for s in chosen) == min(s.flops for s in pool)        # the smallest network is one
    (split,) = small_calibration(pool, 8)
    assert len(split.test) == 15 - 8
    assert not {s.network for s in split.train} & {s.network for s in split.test}


def test_structural_model_is_exact_on_exact_data_and_beats_single_metrics():
    splits = leave_one_strategy_out(samples())
    model = structural_score(splits)
    assert model.n == 15 and max(abs(e) for e in model.errors) < 1e-4
    assert model.covered == model.n                    # every measurement inside its interval
    baseline = best_single_metric(splits)
    assert baseline.n == model.n and baseline.median > 100 * model.median
    assert baseline.method.split()[0] in ("flops", "params", "acts")


def test_evaluation_reports_every_split():
    result = evaluate(samples()).to_dict()
    assert set(result["splits"]) == {"leave one strategy out", "leave largest scale out",
                                     "at most 8 calibration networks"}
    for scores in result["splits"].values():
        assert scores["model"]["within_10"] == 1.0
        assert scores["model"]["n"] == scores["baseline"]["n"]
