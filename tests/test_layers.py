"""The package layering, read from the import statements of every source file (no import runs),
from the bottom up: ``config`` (params, schema, registry, vocabulary) -> ``model`` -> ``extractors``
-> ``pipeline``; each imports only downward:

- ``config`` imports nothing of the project and nothing heavy (the standard library and yaml);
- ``model`` imports nothing of ``extractors`` or ``pipeline``; ``extractors`` nothing of ``pipeline``;
- a corpus adapter (``pipeline/corpora``) and the demo generator import neither ``model`` nor
  ``extractors``, except the released feature files' format (``extractors.feature_pickles``: numpy
  only), which the ``pickled`` adapter reads as a corpus;
- a stage (a module directly in ``pipeline/``) imports no other stage, and library code
  (``pipeline/lib``, ``pipeline/corpora``, ``pipeline/democorpus``) imports no stage;
- the modality vocabulary is defined once;

and, run in a subprocess: the demo and prepare stages never load torch.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SMALL_IEMOCAP

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


PROJECT = ("config", "model", "extractors", "pipeline")


def test_config_is_a_leaf_that_imports_nothing_heavy():
    light = ("yaml", "config", "__future__")
    bad = offending(sources("config"), lambda n: n.split(".")[0] in sys.stdlib_module_names
                    or n.startswith(light))
    assert not bad, bad


def test_model_imports_only_config():
    bad = offending(sources("model"), lambda n: not n.startswith(("extractors", "pipeline")))
    assert not bad, bad


def test_extractors_import_nothing_of_pipeline():
    bad = offending(sources("extractors"), lambda n: not n.startswith("pipeline"))
    assert not bad, bad


@pytest.mark.parametrize("package", ["corpora", "democorpus"])
def test_corpus_adapters_and_the_demo_import_no_model_or_extractor(package):
    bad = offending(sources(f"pipeline/{package}"), lambda n: not n.startswith(("model", "extractors"))
                    or n.startswith("extractors.feature_pickles"))
    assert not bad, bad


def test_demo_and_prepare_never_load_torch(tmp_path):
    """Both stages end to end on a small demo corpus, then: no torch (nor transformers) loaded."""
    script = f"""
import sys
from pipeline import demo, prepare
assert demo.main(["--set", "demo.iemocap={SMALL_IEMOCAP}", "--out", "{tmp_path}/demo"]) == 0
assert prepare.main(["--set", "prepare.root={tmp_path}/demo/IEMOCAP_full_release",
                     "--out", "{tmp_path}/prepared"]) == 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "torchvision"))
assert not heavy, heavy
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "prepared" / "manifest.csv").is_file()


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
    definitions = [f"{p.relative_to(REPO)}:{i + 1}" for pkg in PROJECT
                   for p in sources(pkg) for i, line in enumerate(p.read_text().splitlines())
                   if re.match(r"\s*(MODALITIES|SOURCE_COLUMN|MEDIA_PREFIX)\s*(:[^=]*)?=", line)
                   or re.search(r"[\"']audio[\"']\s*:\s*[\"']audio_path[\"']", line)]
    assert len(definitions) == 3 and all(d.startswith("config/vocabulary.py") for d in definitions), \
        definitions
