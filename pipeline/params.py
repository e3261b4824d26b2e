"""Reading ``params.yaml`` sections for the stage CLIs."""
from __future__ import annotations

from pathlib import Path

import yaml

DEFAULT_PARAMS = Path("params.yaml")


def load_section(section: str, path: Path = DEFAULT_PARAMS) -> dict:
    """The ``section`` mapping of a params file, with a clear error if it is absent."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found (run from the repository root)")
    params = yaml.safe_load(path.read_text()) or {}
    if section not in params or not isinstance(params[section], dict):
        raise KeyError(f"{path}: no '{section}:' section")
    return params[section]
