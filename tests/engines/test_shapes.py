import pytest

from scaleprof.engines.base import ShapePoint, ShapeRange
from scaleprof.engines.shapes import (describe, fits_model_input, grid, parse_point, parse_points, parse_range,
                                      shape_set)
from scaleprof.errors import BadInput


def test_trtexec_point_with_and_without_name():
    assert parse_point("input:8x3x224x224") == ("input", ShapePoint(8, 224))
    assert parse_point("1x3x256x256") == (None, ShapePoint(1, 256))


def test_points_are_sorted_and_deduplicated():
    pts = parse_points("input:8x3x224x224,input:1x3x224x224,input:1x3x224x224")
    assert pts == (ShapePoint(1, 224), ShapePoint(8, 224))


@pytest.mark.parametrize("text, words", [
    ("input:1x3x224", "4"),                  # three dims
    ("input:1x3x224x256", "square"),
    ("input:1x1x224x224", "channels"),
    ("input:0x3x224x224", "zero"),
    ("input:1x3xfoo", "trtexec"),
    ("input:", "trtexec"),
])
def test_bad_points(text, words):
    with pytest.raises(BadInput, match=words):
        parse_point(text)


def test_input_name_must_match_the_model():
    with pytest.raises(BadInput, match="model's input is 'images'"):
        parse_point("input:1x3x224x224", input_name="images")


def test_grid():
    assert grid("1,8", "224,256") == (ShapePoint(1, 224), ShapePoint(1, 256), ShapePoint(8, 224), ShapePoint(8, 256))
    assert grid([32], [224]) == (ShapePoint(32, 224),)
    with pytest.raises(BadInput, match="batch sizes"):
        grid("1,-8", "224")
    with pytest.raises(BadInput, match="resolutions"):
        grid("1", "a")


def test_range_min_opt_max():
    rng = parse_range("input:1x3x224x224", "input:8x3x224x224", "input:32x3x256x256")
    assert rng == ShapeRange(ShapePoint(1, 224), ShapePoint(8, 224), ShapePoint(32, 256))
    assert rng.contains(ShapePoint(16, 240)) and not rng.contains(ShapePoint(64, 224))
    assert parse_range("1x3x224x224", None, "8x3x224x224").opt == ShapePoint(8, 224)   # trtexec: opt = max
    with pytest.raises(BadInput, match="min <= opt <= max"):
        parse_range("input:8x3x224x224", None, "input:1x3x224x224")


def test_shape_set_combines_spellings():
    points, ranges = shape_set(batch="1,8", default_resolution=240)
    assert points == (ShapePoint(1, 240), ShapePoint(8, 240)) and ranges == ()
    points, ranges = shape_set(shapes="input:2x3x224x224", min_shapes="input:1x3x224x224",
                               max_shapes="input:4x3x224x224")
    assert ShapePoint(2, 224) in points and ShapePoint(1, 224) in points and ShapePoint(4, 224) in points
    assert ranges == (ShapeRange(ShapePoint(1, 224), ShapePoint(4, 224), ShapePoint(4, 224)),)
    assert shape_set()[0] == (ShapePoint(1, 224),)
    with pytest.raises(BadInput, match="--maxShapes"):
        shape_set(min_shapes="input:1x3x224x224")


def test_describe_and_static_inputs():
    assert describe([ShapePoint(1, 224)]) == "1x3x224x224"
    fits_model_input(("batch", 3, "h", "w"), [ShapePoint(8, 300)])
    fits_model_input((1, 3, 224, 224), [ShapePoint(1, 224)])
    with pytest.raises(BadInput, match="fixed at 1"):
        fits_model_input((1, 3, 224, 224), [ShapePoint(8, 224)])
