"""Every command the docs show still fits the code: each ``python -m pipeline.<cli> ...`` parses
with that CLI's own argument parser, each ``make <target>`` is a Makefile target, and each
``-S key=value`` / ``--set key=value`` names a param the schema accepts (parsed, not run: the
commands themselves are exercised by the end-to-end tests)."""
import importlib
import re
import shlex

import pytest
import yaml

from config.params import set_value
from config.schema import validate
from tests.conftest import REPO

DOCS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "benchmarks").glob("*/README.md")])
PLACEHOLDER = re.compile(r"<\w+>|…|\.\.\.|\[-|\w\\?\|\w|\bFILE\b|\bROOT\b|\bNAME\b")   # usage lines, not commands


def snippets(text: str) -> list[str]:
    """Shell lines of fenced blocks (continuations joined) and inline code spans (line breaks joined)."""
    out = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S):
        out += [line.split(" #")[0].strip() for line in block.replace("\\\n", " ").splitlines()]
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out += [" ".join(span.split()) for span in re.findall(r"`([^`]+)`", text)]
    return [s for s in out if s]


def commands(prefix: str) -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for snippet in snippets(doc.read_text()):
            for part in re.split(r"\s*(?:;|&&|\bthen\b)\s*", snippet):
                if part.startswith(prefix) and not PLACEHOLDER.search(part):
                    try:
                        found.append((f"{doc.relative_to(REPO)}: {part}", shlex.split(part)))
                    except ValueError:
                        continue
    return found


# A bare `python -m pipeline.report` names the tool; a command has arguments.
PIPELINE = [(where, argv) for where, argv in commands("python -m pipeline.") if len(argv) > 3]


def test_the_docs_show_commands():
    assert len(PIPELINE) >= 5 and len(commands("make ")) >= 3 and commands("dvc exp run")


@pytest.mark.parametrize("where, argv", PIPELINE, ids=[w for w, _ in PIPELINE])
def test_every_documented_cli_command_parses(where, argv):
    module = importlib.import_module(argv[2])
    try:
        module.main.build_parser().parse_args(argv[3:])
    except SystemExit:
        pytest.fail(f"{where}: the CLI's parser refuses it")


def test_every_documented_make_target_exists():
    targets = set(re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), re.M))
    for where, argv in commands("make "):
        named = [a for a in argv[1:] if not a.startswith("-") and "=" not in a]
        assert set(named) <= targets, f"{where}: no such Makefile target ({', '.join(sorted(targets))})"


def test_every_documented_param_override_is_accepted():
    base = yaml.safe_load((REPO / "params.yaml").read_text())
    for where, argv in commands("dvc exp run") + PIPELINE:
        for flag, value in zip(argv, argv[1:]):
            if flag in ("-S", "--set"):
                key, _, raw = value.partition("=")
                params = yaml.safe_load(yaml.safe_dump(base))
                set_value(params, key, yaml.safe_load(raw))
                try:
                    validate(params)
                except ValueError as exc:
                    pytest.fail(f"{where}: {exc}")
