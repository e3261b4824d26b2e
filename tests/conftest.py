"""Shared fixtures: small demo corpora in both release layouts, and the real data in ../shared."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline.democorpus import generate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_cuda(test):
    """A test of the CUDA path: marked ``cuda`` (``python -m pytest -m cuda`` runs them all on a
    machine with a GPU) and skipped without one."""
    import torch

    skip = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    return pytest.mark.cuda(skip(test))


def shared_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


def run(cmd: list[str], cwd: Path) -> str:
    """Run a command with this interpreter's bin/ first on PATH (dvc, python); fail with its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def copy_repo(dest: Path, stale: Sequence[str] = ()) -> Path:
    """The git-tracked files of this repository in a fresh git repo at ``dest`` (for ``dvc repro``),
    without the ``stale`` paths (lock files, generated .gitignores)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    for path in stale:
        (dest / path).unlink(missing_ok=True)
    run(["git", "init", "-q"], dest)
    return dest


def changed_stages(repo: Path) -> dict[str, dict]:
    """Stage -> its changed code/data deps and params, by ``dvc status`` (outputs that are merely
    missing, as in a fresh copy, do not count)."""
    status = json.loads(run(["dvc", "status", "--json"], repo))
    stale = {}
    for stage, entries in status.items():
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            changed = {path: how for path, how in entry.get("changed deps", {}).items() if how != "deleted"}
            if changed or entry.get("changed params") or entry.get("changed command"):
                stale[stage] = {**changed, **({"params": entry["changed params"]} if entry.get("changed params")
                                              else {})}
    return stale


SMALL_IEMOCAP = {"sessions": 5, "dialogues_per_session": 2, "turns": [6, 10], "unlabelled": 0.1}
SMALL_MELD = {"dialogues": {"train": 3, "dev": 2, "test": 1}, "turns": [2, 4]}


@pytest.fixture(scope="session")
def iemocap_demo(tmp_path_factory) -> Path:
    """Root of a small demo corpus in the IEMOCAP release layout (do not modify)."""
    return generate("iemocap", tmp_path_factory.mktemp("iemocap"), seed=3, iemocap=SMALL_IEMOCAP)


@pytest.fixture(scope="session")
def meld_demo(tmp_path_factory) -> Path:
    """Root of a small demo corpus in the MELD.Raw layout (do not modify)."""
    return generate("meld", tmp_path_factory.mktemp("meld"), seed=3, meld=SMALL_MELD)


@pytest.fixture(scope="session")
def iemocap_manifest(iemocap_demo):
    """Manifest of the small IEMOCAP-layout demo (all modalities required, 2 dev dialogues)."""
    from pipeline.corpora import load_corpus
    return load_corpus("iemocap", iemocap_demo, dev_dialogues=2)[0]


@pytest.fixture(scope="session")
def meld_manifest(meld_demo):
    from pipeline.corpora import load_corpus
    return load_corpus("meld", meld_demo)[0]


def prepare_with_features(m, extract_sections: dict, root: Path):
    """``m`` written as a prepared manifest under ``root/prepared`` and every modality of
    ``extract_sections`` (``extract.<modality>`` sections) extracted into ``root/features``; the
    manifest read back."""
    import pandas as pd

    from extractors import get_extractor, section_params
    from extractors.runner import extract
    from pipeline.lib import manifest

    manifest.write(m, pd.DataFrame(), root / "prepared")
    m = manifest.read(root / "prepared")
    for modality, section in extract_sections.items():
        e = get_extractor(modality, section["name"], section_params(section), device="cpu")
        extract(m.table, m.media_path, e, root / "features" / modality, params=section_params(section),
                progress=False)
    return m


@pytest.fixture(scope="session", autouse=True)
def feature_store(tmp_path_factory) -> Path:
    """One feature store for the test session (stages and subprocesses find it by the environment
    variable), never the user's ~/.cache one."""
    from extractors.store import STORE_ENV

    path = tmp_path_factory.mktemp("feature_store")
    previous = os.environ.get(STORE_ENV)
    os.environ[STORE_ENV] = str(path)
    yield path
    if previous is None:
        os.environ.pop(STORE_ENV, None)
    else:
        os.environ[STORE_ENV] = previous


def covered(path: str, deps: Sequence[str]) -> bool:
    """Whether a DVC dep covers the repository-relative ``path``: the path itself or a folder above it."""
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def untracked_imports(project: Path, code_root: Path, traces: Path) -> dict[str, list[str]]:
    """Stage of ``project``'s dvc.lock -> the project files it imported (``AMBDSGDN_TRACE_IMPORTS``
    written to ``traces`` by :mod:`pipeline.cli`) that none of its deps covers. Empty = no drift."""
    import re

    import yaml

    lock = yaml.safe_load((project / "dvc.lock").read_text())
    missing = {}
    for stage, entry in lock["stages"].items():
        found = re.search(r"python -m pipeline\.(\w+)(?: (text|audio|visual)\b)?", entry["cmd"])
        assert found, f"{stage}: not a pipeline CLI: {entry['cmd']}"
        name = f"extract@{found.group(2)}" if found.group(1) == "extract" else found.group(1)
        trace = traces / f"{name}.txt"
        assert trace.is_file(), f"{stage}: no import trace {trace} (did the stage run?)"
        deps = [os.path.relpath((project / d["path"]).resolve(), code_root.resolve())
                for d in entry.get("deps", [])]
        uncovered = [f for f in trace.read_text().split() if not covered(f, deps)]
        if uncovered:
            missing[stage] = uncovered
    return missing
