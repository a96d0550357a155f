"""Sizes the developers' guide asks for: a module of src/scaleprof holds at most 400 lines, a function
or method at most 60 (from its ``def`` line to its last, nested functions included in their outer
one and counted on their own too; decorators not counted). Every offender is named with its size."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def function_sizes(tree: ast.Module) -> list[tuple[str, int, int]]:
    """(qualified name, first line, lines) of every function and method in ``tree``, nested ones too."""
    found = []

    def visit(node, prefix: str):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                found.append((name, child.lineno, child.end_lineno - child.lineno + 1))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


def oversized(root: Path = SRC) -> list[str]:
    """One line per module over MAX_MODULE_LINES and per function over MAX_FUNCTION_LINES."""
    problems = []
    for path in sorted((root / "scaleprof").rglob("*.py")):
        text = path.read_text()
        where = path.relative_to(root)
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
        for name, first, size in function_sizes(ast.parse(text, str(path))):
            if size > MAX_FUNCTION_LINES:
                problems.append(f"{where}:{first}: {name} has {size} lines (at most {MAX_FUNCTION_LINES})")
    return problems


def test_modules_and_functions_stay_within_their_sizes():
    problems = oversized()
    assert not problems, "\n".join(problems)


def _function(name: str, lines: int, indent: str = "") -> str:
    """A function of exactly ``lines`` lines, behind a decorator (which does not count)."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}@staticmethod\n{indent}def {name}():\n{body}{indent}    return 0\n"


def test_checker_names_each_offender_with_its_size(tmp_path):
    package = tmp_path / "scaleprof"
    package.mkdir()
    (package / "fits.py").write_text(_function("at_limit", 60) + "\n" * (400 - 61))
    (package / "long.py").write_text("\n" * 401)
    nested = "class Holder:\n    def outer(self):\n" + _function("inner", 61, "        ") + "        return inner\n"
    (package / "methods.py").write_text(nested + _function("too_long", 61))
    assert len((package / "fits.py").read_text().splitlines()) == 400
    problems = oversized(tmp_path)
    assert "scaleprof/long.py: 401 lines (at most 400)" in problems
    assert "scaleprof/methods.py:2: Holder.outer has 64 lines (at most 60)" in problems
    assert "scaleprof/methods.py:4: Holder.outer.inner has 61 lines (at most 60)" in problems
    assert "scaleprof/methods.py:67: too_long has 61 lines (at most 60)" in problems
    assert not [p for p in problems if "fits.py" in p], problems
    assert len(problems) == 4, problems
