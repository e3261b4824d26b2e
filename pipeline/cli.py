"""What every stage CLI shares: argument parsing, the errors a user can fix, exit codes, and the
import trace that keeps DVC dependencies honest.

A stage module defines ``add_arguments(parser)`` and ``run_cli(args)`` and ends with
``main = stage_main("name", __doc__, add_arguments, run_cli)``. :func:`stage_main` parses the
arguments (``--params``/``--set`` for every stage), runs the stage and turns a user error (bad
params, a missing or stale input, too many failed utterances, a full disk) into
``<name>: error: <message>`` on stderr and exit code 1; anything else is a bug and keeps its
traceback.

With ``AMBDSGDN_TRACE_IMPORTS=<dir>`` set, each stage also writes ``<dir>/<name>.txt``: the
repository files it imported. A test compares them with the stage's ``deps`` in dvc.yaml, so a
stage cannot depend on code that DVC does not track.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.params import add_params_arguments
from config.paths import DISK_FULL

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("config", "pipeline", "extractors", "model")   # the project's code (a venv may sit in the repo)
TRACE_ENV = "AMBDSGDN_TRACE_IMPORTS"


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean "fix your input": every project error derives from ValueError,
    except an extraction stopped by too many failed utterances."""
    from extractors.runner import ExtractionError

    return ValueError, KeyError, FileNotFoundError, ExtractionError


def imported_repo_files() -> list[str]:
    """Repository-relative paths of the project modules loaded in this process."""
    files = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path and Path(path).resolve().is_relative_to(REPO):
            relative = Path(path).resolve().relative_to(REPO)
            if relative.parts[0] in PACKAGES:
                files.add(relative.as_posix())
    return sorted(files)


def write_import_trace(name: str) -> None:
    import os

    where = os.environ.get(TRACE_ENV)
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        (Path(where) / f"{name}.txt").write_text("\n".join(imported_repo_files()) + "\n")


def choices_epilog(choices: dict[str, list[str]]) -> str:
    """``--help``'s list of what params may name (read from the registries)."""
    return "choices by name: " + "; ".join(f"{key}: {' | '.join(names)}" for key, names in choices.items())


def stage_main(name: str | Callable[[argparse.Namespace], str], doc: str | None,
               add_arguments: Callable[[argparse.ArgumentParser], None],
               run_cli: Callable[[argparse.Namespace], Any], params: bool = True
               ) -> Callable[[list[str] | None], int]:
    """The ``main(argv) -> exit code`` of a stage (``name`` may depend on the arguments, e.g.
    ``extract@audio``); ``params``: whether it reads a params file (``--params``, ``--set``)."""
    def build_parser() -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(description=(doc or str(name)).strip().splitlines()[0])
        add_arguments(parser)
        if params:
            add_params_arguments(parser)
        return parser

    def main(argv: list[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        label = name(args) if callable(name) else name
        try:
            run_cli(args)
        except user_errors() as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"{label}: error: {message}", file=sys.stderr)
            return 1
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise                     # anything else is a bug: its traceback is kept
            print(f"{label}: error: no space left on the device writing {exc.filename or 'a file'}: "
                  "free some and run again (finished work is kept; nothing half-written is read)",
                  file=sys.stderr)
            return 1
        finally:
            write_import_trace(label)
        return 0

    main.build_parser = build_parser   # the documented commands are checked against it (tests/test_docs.py)
    return main
