"""Shared fixtures: small demo corpora in both release layouts, and the real data in ../shared."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.democorpus import generate

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


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
