"""Data flows one way: spec -> model -> counts -> ONNX -> engine -> measurements -> report.

Every import in src/scaleprof (top level and inside functions) is read with ``ast``; a stage that
imports a later stage, a private name taken across packages, or any import cycle between modules
fails the test with the file and line."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Lower rank = earlier. A module may import its own rank or lower ranks only.
RANKS = {
    "scaleprof": 0, "scaleprof.errors": 0, "scaleprof.core": 0,
    "scaleprof.models": 1,
    "scaleprof.complexity": 2,
    "scaleprof.export": 3,
    "scaleprof.engines": 4,
    "scaleprof.profile": 5,
    "scaleprof.sweep": 6,
    "scaleprof.predict": 7,
    "scaleprof.report": 8,
    "scaleprof.tools": 9, "scaleprof.cli": 9, "scaleprof.__main__": 9,
}


# Stages whose input is a file, not the earlier stage's objects: engines see an ONNX file only (its
# helpers live in scaleprof.core), so they import neither the model zoo nor the exporter.
SEPARATED = {("scaleprof.engines", "scaleprof.models"), ("scaleprof.engines", "scaleprof.export")}
# Subcommands share argument groups and helpers through one module, never each other.
TOOLS_SHARED = "scaleprof.tools.args"


def module_name(path: Path, root: Path = SRC) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def stage_of(module: str) -> str:
    """The longest RANKS key that ``module`` lies in ("scaleprof.models.spec" -> "scaleprof.models")."""
    best = ""
    for key in RANKS:
        if (module == key or module.startswith(key + ".")) and len(key) > len(best):
            best = key
    return best


def imports_of(path: Path, modules: set[str], root: Path = SRC) -> list[tuple[str, int, list[str]]]:
    """(imported module, line, names taken) for every scaleprof import in the file, anywhere in it.
    ``from pkg import sub`` counts as importing the module pkg.sub when that module exists."""
    this = module_name(path, root)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, []) for a in node.names if a.name.split(".")[0] == "scaleprof"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "scaleprof":
                continue
            plain = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in modules:
                    found.append((sub, node.lineno, []))
                else:
                    plain.append(alias.name)
            if plain:
                found.append((base, node.lineno, plain))
    return found


def all_modules(root: Path = SRC) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / "scaleprof").rglob("*.py"))}


def violations(root: Path = SRC) -> list[str]:
    modules = all_modules(root)
    problems, graph = [], {m: set() for m in modules}
    for name, path in modules.items():
        own = stage_of(name)
        where = path.relative_to(root)
        for target, line, names in imports_of(path, set(modules), root):
            other = stage_of(target)
            if other not in RANKS:
                problems.append(f"{where}:{line}: imports {target}, which belongs to no known stage")
                continue
            if RANKS[other] > RANKS[own]:
                problems.append(f"{where}:{line}: stage {own} imports the later stage {target}")
            if (own, other) in SEPARATED:
                problems.append(f"{where}:{line}: stage {own} must not import {target} (it reads files only)")
            if own == other == "scaleprof.tools" and name != TOOLS_SHARED and target not in (TOOLS_SHARED, own):
                problems.append(f"{where}:{line}: subcommand {name} imports another subcommand {target}")
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and other != own:
                problems.append(f"{where}:{line}: takes private name(s) {', '.join(private)} from {target}")
            if target in modules and target != name:
                graph[name].add((target, line))
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph, modules, root)]
    return problems


def cycles(graph: dict, modules: dict, root: Path) -> list[list[str]]:
    """One cycle per strongly connected component of the module graph (Tarjan), each with lines."""
    index, low, stack, on_stack, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w, _ in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(set(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    out = []
    for comp in comps:
        path, v = [], min(comp)
        while True:
            w, line = min((w, l) for w, l in graph[v] if w in comp)
            path.append(f"{modules[v].relative_to(root)}:{line}")
            if any(p.startswith(str(modules[w].relative_to(root)) + ":") for p in path):
                break
            v = w
        out.append(path)
    return out


def test_stages_import_only_earlier_stages_and_no_cycles():
    problems = violations()
    assert not problems, "\n".join(problems)


def test_every_module_belongs_to_a_stage():
    unknown = [m for m in all_modules() if stage_of(m) not in RANKS]
    assert not unknown, unknown


# The checker itself must catch what it promises: a small tree with each kind of fault.
FAULTY = {
    "scaleprof/__init__.py": "",
    "scaleprof/models/__init__.py": "",
    "scaleprof/models/scaling.py": "def f():\n    from scaleprof.complexity.torch_count import _direct\n",
    "scaleprof/complexity/__init__.py": "",
    "scaleprof/complexity/torch_count.py": "from scaleprof.models import scaling\n",
    "scaleprof/complexity/onnx_count.py": "def g():\n    from scaleprof.export.onnx_io import load\n",
    "scaleprof/export/__init__.py": "",
    "scaleprof/export/onnx_io.py": "",
    "scaleprof/engines/__init__.py": "",
    "scaleprof/engines/tensorrt.py": "import scaleprof.profile.mapping\n",
    "scaleprof/engines/torch_backend.py": "def h():\n    from scaleprof.models import build_model\n",
    "scaleprof/tools/__init__.py": "",
    "scaleprof/tools/args.py": "",
    "scaleprof/tools/count.py": "from scaleprof.tools.args import a\nfrom scaleprof.tools.scale import b\n",
    "scaleprof/tools/scale.py": "",
    "scaleprof/profile/__init__.py": "",
    "scaleprof/profile/mapping.py": "from . import layers\n",
    "scaleprof/profile/layers.py": "from .mapping import x\n",
}


@pytest.fixture
def faulty_tree(tmp_path):
    for rel, text in FAULTY.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_checker_names_each_kind_of_fault_with_file_and_line(faulty_tree):
    text = "\n".join(violations(faulty_tree))
    assert "scaleprof/models/scaling.py:2: stage scaleprof.models imports the later stage scaleprof.complexity" in text
    assert "scaleprof/models/scaling.py:2: takes private name(s) _direct" in text
    assert "scaleprof/complexity/onnx_count.py:2: stage scaleprof.complexity imports the later stage" in text
    assert "scaleprof/engines/tensorrt.py:1: stage scaleprof.engines imports the later stage scaleprof.profile" in text
    assert "scaleprof/engines/torch_backend.py:2: stage scaleprof.engines must not import scaleprof.models" in text
    assert "scaleprof/tools/count.py:2: subcommand scaleprof.tools.count imports another subcommand" in text
    assert "tools/count.py:1" not in text
    cycle_lines = [line for line in text.splitlines() if line.startswith("import cycle")]
    assert len(cycle_lines) == 2, text
    assert any("complexity/torch_count.py:1" in c and "models/scaling.py:2" in c for c in cycle_lines)
    assert any("profile/layers.py:1" in c and "profile/mapping.py:1" in c for c in cycle_lines)
