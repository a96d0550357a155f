"""Importing the stages, and the commands that only read files (report, inspect, build with ONNX Runtime,
reading ONNX metadata), do not import torch (~2-3 s of start-up). Each check runs in a fresh interpreter:
the test process itself has long imported torch."""

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.report.synthetic import fill_store, synthetic_rows

PACKAGES = ["scaleprof.models", "scaleprof.complexity", "scaleprof.export", "scaleprof.engines", "scaleprof.report",
            "scaleprof.sweep", "scaleprof.profile", "scaleprof.cli"]
HEAVY = ("torch", "timm")


def _fresh(code: str) -> str:
    """Run ``code`` in a new interpreter; stdout, or the failure with its stderr."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("package", PACKAGES)
def test_stage_import_does_not_import_torch(package):
    out = _fresh(f"""
        import sys
        import {package}
        print([m for m in {HEAVY!r} if m in sys.modules])
    """)
    assert out.strip() == "[]", f"import {package} imported {out.strip()}"


def test_all_stages_together_and_public_names_without_torch():
    # The agreed public names that need no network resolve without torch; the rest stay reachable.
    out = _fresh(f"""
        import sys
        import scaleprof.models, scaleprof.complexity, scaleprof.export, scaleprof.engines, scaleprof.report
        import scaleprof.sweep
        from scaleprof.models import ModelSpec, STRATEGIES, all_models, family_of, list_models, parse_strategy
        from scaleprof.complexity import CONVENTION, count_onnx
        from scaleprof.export import read_metadata
        from scaleprof.engines import BACKENDS, build_engine, open_engine
        assert "tf_efficientnet_b0" in all_models() and family_of("efficientnet_b0").name == "efficientnet"
        print([m for m in {HEAVY!r} if m in sys.modules])
        from scaleprof.complexity import count_spec          # lazy names still work, and do import torch
        from scaleprof.export import export_onnx, ExportOptions
        print("torch" in sys.modules, callable(count_spec), callable(export_onnx))
    """)
    first, second = out.strip().splitlines()
    assert first == "[]"
    assert second == "True True True"


def test_building_the_cli_parser_imports_no_stage():
    """Every command builds the whole parser: its shared argument groups (scaleprof.tools.args) import
    stages only when a value is read, e.g. the timing defaults when `profile` is parsed."""
    out = _fresh("""
        import json, sys
        from scaleprof.cli import make_parser

        def stages():
            return sorted({m.split(".")[1] for m in sys.modules if m.startswith("scaleprof.")}
                          - {"cli", "tools", "core", "errors"})

        parser = make_parser()
        built = stages()
        profile = parser.parse_args(["profile", "x.onnx", "--backend", "tensorrt"])
        build = parser.parse_args(["build", "x.onnx", "--backend", "trt"])
        from scaleprof.profile.types import TimingSettings
        from scaleprof.tools.args import default_device, timing_settings
        same = timing_settings(profile) == TimingSettings()
        print(json.dumps([built, same, default_device(profile.backend), default_device(build.backend),
                          default_device("ort"), profile.device, build.device]))
    """)
    built, same, *devices = json.loads(out.strip().splitlines()[-1])
    assert built == [] and same
    assert devices == ["cuda", "cuda", "cpu", None, None]     # one default rule for build and profile


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    """A real `scaleprof export` file (the smallest RegNet at 64 px; parity is the export tests' job)."""
    from dataclasses import replace

    from scaleprof.export import ExportOptions, export_onnx
    from scaleprof.models import base_spec

    path = tmp_path_factory.mktemp("onnx") / "regnetx_002.onnx"
    export_onnx(replace(base_spec("regnetx_002"), resolution=64), path, ExportOptions(check_parity=False))
    return path


def test_reading_commands_do_not_import_torch(small_onnx, tmp_path):
    """scaleprof report, inspect and build (ONNX Runtime), and read_metadata, end to end in one interpreter."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    fill_store(sweep, synthetic_rows(strategies=("d", "w", "dWr")))
    out = _fresh(f"""
        import contextlib, io, json, sys
        from scaleprof.cli import main

        loaded = {{}}
        def step(name, argv):
            with contextlib.redirect_stdout(io.StringIO()):
                assert main(argv) == 0, argv
            loaded[name] = [m for m in {HEAVY!r} if m in sys.modules]

        step("report", ["report", {str(sweep)!r}])
        step("inspect", ["inspect", {str(small_onnx)!r}])
        step("build", ["build", {str(small_onnx)!r}, "--backend", "ort", "--resolution", "64",
                       "--cache-dir", {str(tmp_path / "engines")!r}])
        from scaleprof.export import read_metadata
        assert read_metadata({str(small_onnx)!r}).spec.model == "regnetx_002"
        loaded["read_metadata"] = [m for m in {HEAVY!r} if m in sys.modules]
        print(json.dumps(loaded))
    """)
    loaded = json.loads(out.strip().splitlines()[-1])
    assert loaded == {"report": [], "inspect": [], "build": [], "read_metadata": []}
    assert (sweep / "report.html").is_file()


# ------------------------------------------------------------------ where imports stand
# One idiom: a module imports what it uses at its top. Inside a function only (a) the heavy
# libraries below, so that importing a stage costs no torch, onnx or matplotlib; (b) in the
# subcommand modules (scaleprof/tools, scaleprof/cli), the stages a command runs, so that building
# the CLI parser imports none; (c) the project imports listed in LAZY_PROJECT_IMPORTS, each of which
# would load one of those heavy libraries when its module is imported.
SRC = Path(__file__).resolve().parents[1] / "src"
HEAVY_LIBRARIES = {"torch", "torchvision", "timm", "effdet", "omegaconf", "onnx", "onnxruntime", "onnxscript",
                   "tensorrt", "tensorrt_rtx", "polygraphy", "ray", "matplotlib", "scipy", "numpy", "PIL", "rich",
                   "yaml", "pynvml", "ml_dtypes"}
LAZY_PROJECT_IMPORTS = {     # file -> the project modules it imports inside functions (each loads torch)
    "scaleprof/complexity/__init__.py": {"scaleprof.core.costs"},
    "scaleprof/complexity/torch_count.py": {"scaleprof.core.costs"},
    "scaleprof/export/__init__.py": {"scaleprof.export"},                   # its onnx_export module
    "scaleprof/export/cached.py": {"scaleprof.export.onnx_export"},
    "scaleprof/export/rebuild.py": {"scaleprof.export.onnx_export"},
    "scaleprof/export/writing.py": {"scaleprof.core.costs"},
    "scaleprof/models/scaling.py": {"scaleprof.core.costs"},
    "scaleprof/predict/sweep_kernels.py": {"scaleprof.export"},             # export_onnx
    # the report package and the executors' package stay free of numpy until used
    "scaleprof/report/__init__.py": {"scaleprof.report", "scaleprof.sweep.store", "scaleprof.report.blocks"},
    "scaleprof/sweep/executors/__init__.py": {"scaleprof.sweep.executors.ray_driver",
                                               "scaleprof.sweep.executors.local"},
}


def _function_imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Import):
                    yield node.lineno, node.names[0].name
                elif isinstance(node, ast.ImportFrom):
                    yield node.lineno, node.module or ""


def test_imports_stand_at_the_top_unless_heavy():
    misplaced = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        subcommand = rel.startswith("scaleprof/tools/") or rel == "scaleprof/cli.py"
        for line, module in _function_imports(path):
            root = module.split(".")[0]
            if root in HEAVY_LIBRARIES or (root == "scaleprof" and (subcommand or module in
                                                                  LAZY_PROJECT_IMPORTS.get(rel, ()))):
                continue
            misplaced.append(f"{rel}:{line}: import of {module} inside a function")
    assert not misplaced, "\n".join(misplaced)
