"""The sweep's caches are checked against what they claim (issue 23): an export by its metadata and its
graph, not by its file name; a count or a spec by its values. What fails the check is computed again."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

import scaleprof.export.onnx_export
from scaleprof.export.onnx_io import read_metadata
from scaleprof.models import base_spec
from scaleprof.sweep.stages import UpstreamStages
from tests.test_hostile_inputs import tiny_onnx


@pytest.fixture
def exports(b0_onnx, tmp_path, monkeypatch):
    """(spec, the cache's file name for it, the exports made): exporting copies the session's B0."""
    spec = read_metadata(b0_onnx).spec
    made = []

    def export(spec, path, options):
        made.append(path)
        shutil.copy(b0_onnx, path)
    monkeypatch.setattr(scaleprof.export.onnx_export, "export_onnx", export)
    return spec, tmp_path / f"{spec.model}-{spec.key}-fp32.onnx", made


def test_the_cached_export_is_used_when_it_is_what_its_name_says(exports, b0_onnx, tmp_path):
    spec, cached, made = exports
    shutil.copy(b0_onnx, cached)
    assert UpstreamStages().export(spec, "fp32", "", tmp_path) == cached and made == []


def test_a_swapped_file_under_the_cache_name_is_exported_again(exports, tmp_path):
    spec, cached, made = exports
    tiny_onnx(cached)
    UpstreamStages().export(spec, "fp32", "", tmp_path)
    assert made == [cached] and read_metadata(cached).spec == spec


def test_a_forged_file_with_the_models_metadata_is_exported_again(exports, b0_onnx, tmp_path):
    """A one-conv graph carrying B0's metadata (spec and counts): its graph gives it away."""
    spec, cached, made = exports
    forged = onnx.load(tiny_onnx(tmp_path / "tiny.onnx"))
    forged.metadata_props.extend(onnx.load(b0_onnx, load_external_data=False).metadata_props)
    onnx.save(forged, cached)
    UpstreamStages().export(spec, "fp32", "", tmp_path)
    assert made == [cached]


def test_an_export_at_another_precision_is_not_taken(exports, b0_onnx, tmp_path):
    spec, cached, made = exports
    fp16_name = cached.with_name(cached.name.replace("-fp32", "-fp16"))
    shutil.copy(b0_onnx, fp16_name)                          # an fp32 file under the fp16 name
    UpstreamStages().export(spec, "fp16", "", tmp_path)
    assert made == [fp16_name]


def test_a_damaged_count_cache_is_counted_again(tmp_path):
    spec = base_spec("efficientnet_b0")
    stages = UpstreamStages()
    stages.open(tmp_path)
    first = stages.count(spec, 64)
    entries = list((tmp_path / "cache" / "counts").glob("*.json"))
    assert entries
    for damaged in ({"flops": -1, "params": 0, "acts": 0, "layer_count": 1}, {"flops": 5}, {"flops": "1e9"}):
        for entry in entries:
            entry.write_text(json.dumps(damaged))
        again = UpstreamStages()
        again.open(tmp_path)
        assert again.count(spec, 64) == first
