"""Fixtures several stages' tests share."""

import dataclasses

import pytest


@pytest.fixture(scope="session")
def b0_onnx(tmp_path_factory):
    """EfficientNet-B0 as scaleprof exports it at 64 px (dynamic axes, no parity run: the tests that use
    it need its graph, whose node names do not depend on the resolution). Read it; do not change it."""
    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    spec = dataclasses.replace(base_spec("efficientnet_b0"), resolution=64)
    path = tmp_path_factory.mktemp("b0") / "efficientnet_b0.onnx"
    export_onnx(spec, path, ExportOptions(check_parity=False))
    return path


@pytest.fixture
def scaleprof(capsys):
    """The real CLI in this process: scaleprof(*argv) -> (exit code, stdout, stderr)."""
    from scaleprof import cli

    def call(*argv):
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return call
