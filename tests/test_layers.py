"""The package layering, read from the import statements of every source file (no import runs):

- ``model`` is the bottom layer: it imports nothing of ``extractors`` or ``pipeline``;
- ``extractors`` read the manifest's vocabulary (``pipeline.lib.manifest``) and nothing else of
  ``pipeline``;
- a stage (a module directly in ``pipeline/``) imports no other stage, and library code
  (``pipeline/lib``, ``pipeline/corpora``, ``pipeline/democorpus``) imports no stage;
- the modality vocabulary is defined once.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPO

STAGES = {p.stem for p in (REPO / "pipeline").glob("*.py") if p.stem not in ("__init__", "cli")}


def sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module named by an import statement of ``path`` (also the local ones in functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def offending(paths: list[Path], allowed) -> list[str]:
    return [f"{p.relative_to(REPO)}: {name}" for p in paths for name in sorted(imported(p))
            if not allowed(name)]


def test_model_is_the_bottom_layer():
    bad = offending(sources("model"), lambda n: not n.startswith(("extractors", "pipeline")))
    assert not bad, bad


def test_extractors_read_only_the_manifest_vocabulary_of_pipeline():
    bad = offending(sources("extractors"),
                    lambda n: not n.startswith("pipeline") or n.startswith("pipeline.lib.manifest")
                    or n == "pipeline.lib")
    assert not bad, bad


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_imports_no_other_stage(stage):
    others = {f"pipeline.{s}" for s in STAGES - {stage}}
    bad = offending([REPO / "pipeline" / f"{stage}.py"],
                    lambda n: n not in others and not any(n.startswith(o + ".") for o in others))
    assert not bad, bad


def test_library_code_imports_no_stage():
    stages = {f"pipeline.{s}" for s in STAGES} | {"pipeline.cli"}
    library = [p for p in sources("pipeline") if p.parent != REPO / "pipeline"]
    bad = offending(library, lambda n: n not in stages and not any(n.startswith(s + ".") for s in stages))
    assert not bad, bad


def test_one_definition_of_the_modality_vocabulary():
    definitions = [f"{p.relative_to(REPO)}:{i + 1}" for pkg in ("pipeline", "extractors", "model")
                   for p in sources(pkg) for i, line in enumerate(p.read_text().splitlines())
                   if re.match(r"\s*(MODALITIES|SOURCE_COLUMN|MEDIA_PREFIX)\s*(:[^=]*)?=", line)
                   or re.search(r"[\"']audio[\"']\s*:\s*[\"']audio_path[\"']", line)]
    assert len(definitions) == 3 and all(d.startswith("pipeline/lib/manifest.py") for d in definitions), \
        definitions
