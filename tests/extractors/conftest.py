"""Fixtures for extractor tests: manifests built from the demo corpora."""
import pytest

from pipeline.corpora import load_corpus
from pipeline.corpora.common import PrepareOptions


@pytest.fixture(scope="session")
def iemocap_manifest(iemocap_demo):
    return load_corpus("iemocap", iemocap_demo, PrepareOptions(), dev_dialogues=2)[0]


@pytest.fixture(scope="session")
def meld_manifest(meld_demo):
    return load_corpus("meld", meld_demo, PrepareOptions())[0]
