"""Reading params files for the stage CLIs, with ``--set key.path=value`` overrides.

Overrides use the dotted keys of ``dvc exp run -S`` and YAML values (``--set model.graph=gat``,
``--set train.seeds=[0,1,2]``), so a benchmark pipeline can reuse one params file for several
variants without copying it. Every CLI loads through :func:`load_params`, which checks the whole
file against :mod:`config.schema` before any work (unknown keys, wrong types) and fills defaults;
a stage passes the ``extensions`` of the registries it uses (see :mod:`config.schema`).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import yaml

from config.paths import file_problem
from config.schema import Extensions, Params, validate

DEFAULT_PARAMS = Path("params.yaml")
BASE = "base"   # the key naming the params file this one holds only the differences from


def load_params(path: Path = DEFAULT_PARAMS, overrides: Sequence[str] = (),
                extensions: Extensions | None = None, sections: Sequence[str] | None = None) -> Params:
    """The whole params file (its ``base`` chain merged under it) with ``overrides``
    (``"a.b=value"``) applied, checked against the schema (:class:`config.schema.ParamsError`
    names the key), defaults filled in."""
    params = read_params_file(Path(path))
    for item in overrides:
        set_dotted(params, item)
    return validate(params, str(path), extensions, sections)


def read_params_file(path: Path, _seen: tuple[Path, ...] = ()) -> dict:
    """A params file's mapping. A file may hold only what differs from another:
    ``base: <path relative to it>`` names that file, whose params (its own base's first) are
    merged under this file's, section by section and key by key (a list replaces a list)."""
    problem = file_problem(path)
    if problem == "does not exist":
        raise FileNotFoundError(f"{path}: params file not found (run from the repository root)")
    if problem:
        raise ValueError(f"{path}: the params file {problem}")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(params, dict):
        raise ValueError(f"{path}: not a mapping of sections")
    base = params.pop(BASE, None)
    if base is None:
        return params
    if not isinstance(base, str):
        raise ValueError(f"{path}: base: expected the path of a params file, got {base!r}")
    chain = (*_seen, path.resolve())
    if (path.parent / base).resolve() in chain:
        raise ValueError(f"{path}: base: {base} leads back to a file of the chain (a cycle)")
    return merged(read_params_file(path.parent / base, chain), params)


def merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` on top: mappings merged key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = (merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict)
                    else value)
    return out


def set_dotted(params: dict, item: str) -> None:
    """Apply one ``key.path=value`` override in place (intermediate sections are created)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set {item!r}: expected key.path=value")
    set_value(params, key.strip(), yaml.safe_load(raw) if raw.strip() else "", f"--set {item!r}")


def set_value(params: dict, key: str, value, where: str = "") -> None:
    """``params[a][b] = value`` for the dotted ``key`` ``a.b`` (intermediate sections created)."""
    parts = key.split(".")
    node = params
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{where or key}: {'.'.join(parts[:i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def load_section(section: str, path: Path = DEFAULT_PARAMS, overrides: Sequence[str] = ()) -> dict:
    """The ``section`` mapping of a params file, with a clear error if it is absent."""
    params = load_params(path, overrides, sections=(section,))
    if section not in params or not isinstance(params[section], dict):
        raise KeyError(f"{path}: no '{section}:' section")
    return params[section]


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """``--params FILE`` and repeatable ``--set key.path=value`` for a stage CLI."""
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a param, e.g. --set model.graph=gat (repeatable)")
