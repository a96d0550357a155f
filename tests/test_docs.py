"""The commands README.md and docs/*.md show still work, and their links lead somewhere.

Convention (docs/development.md#commands-in-the-docs): commands a reader can type sit in ```console
blocks as lines starting with ``$ ``; a trailing backslash continues a line, ``#`` starts a comment,
other lines are output. Every ``$ scaleprof ...`` line is parsed by scaleprof's own argument parser,
so a renamed subcommand or flag fails here. The blocks right after a ``<!-- test: run -->`` line
are cheap and run for real, in order, in one temporary directory per document. ``$ make X`` needs
a Makefile target X and ``$ python -m benchmarks.X`` a benchmark X; other programs (pip, docker,
ray) are not checked."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from scaleprof import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_MARK = "<!-- test: run -->"
README_LINES = 150
OLD_REFERENCE = "SCALING.md"        # the counting conventions are docs/conventions.md now


@dataclass(frozen=True)
class Command:
    where: str              # doc:line, for the test id and failure messages
    argv: tuple[str, ...]
    run: bool               # in a block marked to run


def commands_of(path: Path) -> list[Command]:
    """The ``$`` commands of ``path``'s console blocks, in order."""
    lines = path.read_text().splitlines()
    found, in_block, run, pending, first = [], False, False, "", 0
    for number, text in enumerate((line.strip() for line in lines), 1):
        if not in_block:
            if text == "```console":
                in_block, run = True, number > 1 and lines[number - 2].strip() == RUN_MARK
            continue
        if text == "```":
            in_block = False
            continue
        if not pending and not text.startswith("$ "):
            continue                                        # output
        pending, first = (pending + " " + text, first) if pending else (text[2:].strip(), number)
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        found.append(Command(f"{path.relative_to(ROOT)}:{first}", tuple(shlex.split(pending, comments=True)), run))
        pending = ""
    return found


ALL = [c for doc in DOCS for c in commands_of(doc)]
SCALEPROF = [c for c in ALL if c.argv[:1] == ("scaleprof",)]
RUNNABLE_DOCS = sorted({c.where.split(":")[0] for c in ALL if c.run})


@pytest.fixture(scope="module")
def parser():
    return cli.make_parser()


@pytest.mark.parametrize("command", SCALEPROF, ids=[c.where for c in SCALEPROF])
def test_documented_command_parses(parser, command):
    try:
        args = parser.parse_args(list(command.argv[1:]))
    except SystemExit as exit_:
        pytest.fail(f"{command.where}: `{shlex.join(command.argv)}` does not parse (exit {exit_.code})")
    assert args.command == command.argv[1]


def test_documented_make_targets_and_benchmarks_exist():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for command in ALL:
        if command.argv[:1] == ("make",):
            assert set(command.argv[1:]) <= targets, f"{command.where}: no such make target in {command.argv}"
        module = command.argv[2] if command.argv[:2] == ("python", "-m") and len(command.argv) > 2 else ""
        if module.startswith("benchmarks."):
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), f"{command.where}: no {module}"


def test_every_subcommand_is_documented_and_has_help(capsys):
    documented = {c.argv[1] for c in SCALEPROF if len(c.argv) > 1}
    assert set(cli.SUBTOOLS) <= documented, f"no console example of: {sorted(set(cli.SUBTOOLS) - documented)}"
    for name in cli.SUBTOOLS:
        with pytest.raises(SystemExit) as exit_:
            cli.main([name, "--help"])
        assert exit_.value.code == 0 and capsys.readouterr().out.startswith(f"usage: scaleprof {name}")


@pytest.mark.slow
@pytest.mark.parametrize("doc", RUNNABLE_DOCS)
def test_runnable_blocks_run(doc, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCALEPROF_CACHE_DIR", str(tmp_path / "user-cache"))
    for command in (c for c in ALL if c.run and c.where.startswith(doc + ":")):
        assert command.argv[0] == "scaleprof", f"{command.where}: only scaleprof commands run here"
        code = cli.main(list(command.argv[1:]))
        captured = capsys.readouterr()
        assert code == 0, f"{command.where}: `{shlex.join(command.argv)}` exited {code}: {captured.err[-2000:]}"
        assert captured.out.strip(), f"{command.where}: `{shlex.join(command.argv)}` printed nothing"


def anchors_of(path: Path) -> set[str]:
    text = path.read_text()
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}
    return slugs | set(re.findall(r'<a id="([^"]+)"', text))


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_links_stay_in_the_repository_and_resolve(doc):
    text = doc.read_text()
    outside = [t for t in re.findall(r"(?:\.\./)+[\w./-]*", text)
               if not (doc.parent / t).resolve().is_relative_to(ROOT)]               # a clone has nothing there
    assert not outside and OLD_REFERENCE not in text, f"{doc.name} points outside the repository: {outside}"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue                                        # https:, mailto:
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        assert path.is_relative_to(ROOT) and path.exists(), f"{doc.name}: link to missing {target}"
        if anchor and path.suffix == ".md":
            assert anchor in anchors_of(path), f"{doc.name}: {target}: no such section"


def test_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < README_LINES
    linked = set(re.findall(r"\]\(docs/([\w-]+\.md)", text))
    assert {p.name for p in (ROOT / "docs").glob("*.md")} <= linked, "a docs/ guide the README does not link"
    assert RUN_MARK in text and "make demo" in text and "make test" in text


def test_citations_of_the_docs_in_the_code_resolve():
    cited = 0
    for source in [*ROOT.glob("src/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("benchmarks/*.py")]:
        for file, anchor in re.findall(r"\bdocs/([\w-]+\.md)(?:#([\w-]+))?", source.read_text()):
            cited += 1
            doc = ROOT / "docs" / file
            assert doc.is_file(), f"{source.relative_to(ROOT)} cites missing docs/{file}"
            assert not anchor or anchor in anchors_of(doc), f"{source.relative_to(ROOT)}: no section {file}#{anchor}"
    assert cited, "no code cites the docs"
