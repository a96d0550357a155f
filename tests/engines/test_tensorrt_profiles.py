"""TensorRT optimisation profiles without TensorRT: planning, per-input dims, choosing a profile."""

from __future__ import annotations

import pytest

from scaleprof.engines.base import ShapePoint as P, ShapeRange as R
from scaleprof.engines.tensorrt.profiles import plan_profiles, profile_dims, select_profile, symbolic_shape
from scaleprof.errors import BadInput

SHAPES = (P(1, 224), P(8, 224), P(32, 224), P(1, 256), P(8, 256))


# --- profiles ------------------------------------------------------------------------------

def test_per_shape_gives_one_static_profile_per_shape_in_sorted_order():
    profiles = plan_profiles(reversed(SHAPES))
    assert profiles == tuple(R(p, p, p) for p in sorted(SHAPES))


def test_per_resolution_spans_batches_with_opt_at_the_largest():
    profiles = plan_profiles(SHAPES, mode="per-resolution")
    assert profiles == (R(P(1, 224), P(32, 224), P(32, 224)), R(P(1, 256), P(8, 256), P(8, 256)))


def test_single_spans_everything():
    assert plan_profiles(SHAPES, mode="single") == (R(P(1, 224), P(32, 256), P(32, 256)),)


def test_explicit_ranges_come_first_and_cover_their_shapes():
    rng = R(P(1, 224), P(8, 224), P(32, 224))
    profiles = plan_profiles(SHAPES, (rng,))
    assert profiles[0] == rng
    # the 224 shapes are inside the explicit range; only the 256 ones get profiles of their own
    assert profiles[1:] == (R(P(1, 256), P(1, 256), P(1, 256)), R(P(8, 256), P(8, 256), P(8, 256)))


def test_duplicate_ranges_are_one_profile():
    rng = R(P(1, 224), P(8, 224), P(32, 224))
    assert plan_profiles((), (rng, rng)) == (rng,)


@pytest.mark.parametrize("bad", [R(P(8, 224), P(1, 224), P(32, 224)), R(P(1, 256), P(1, 224), P(1, 256))])
def test_a_range_out_of_order_is_refused(bad):
    with pytest.raises(BadInput, match="min <= opt <= max"):
        plan_profiles((), (bad,))


def test_no_shapes_and_unknown_mode_are_refused():
    with pytest.raises(BadInput, match="no shapes"):
        plan_profiles(())
    with pytest.raises(BadInput, match="profile mode"):
        plan_profiles(SHAPES, mode="per-batch")


def test_profile_dims_fill_dynamic_dims_and_keep_static_channels():
    rng = R(P(1, 224), P(8, 224), P(32, 256))
    assert profile_dims((-1, 3, -1, -1), rng) == ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 256, 256))
    assert profile_dims(("batch", 3, "height", "width"), rng)[2] == (32, 3, 256, 256)


def test_profile_dims_refuse_a_shape_that_contradicts_a_static_dim():
    with pytest.raises(BadInput, match="dim 2 is fixed at 224"):
        profile_dims((-1, 3, 224, 224), R(P(1, 224), P(1, 224), P(1, 256)), "input")
    with pytest.raises(BadInput, match="NCHW"):
        profile_dims((-1, 3, 224), R(P(1, 224), P(1, 224), P(1, 224)))


def test_select_profile_prefers_exact_opt_then_the_narrowest_range():
    ranges = (R(P(1, 224), P(32, 224), P(32, 224)), R(P(8, 224), P(8, 224), P(8, 224)),
              R(P(1, 224), P(4, 224), P(16, 224)))
    assert select_profile(ranges, P(8, 224)) == 1          # exact opt
    assert select_profile(ranges, P(32, 224)) == 0         # exact opt of the wide one
    assert select_profile(ranges, P(2, 224)) == 2          # narrowest containing range
    with pytest.raises(BadInput, match="outside every optimisation profile"):
        select_profile(ranges, P(64, 224))


def test_symbolic_shape_names_dynamic_nchw_dims():
    assert symbolic_shape((-1, 3, -1, -1)) == ("batch", 3, "height", "width")
    assert symbolic_shape((1, 3, 224, 224)) == (1, 3, 224, 224)
