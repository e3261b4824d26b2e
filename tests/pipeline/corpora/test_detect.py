import pytest

from pipeline.corpora import detect_corpus
from pipeline.lib.manifest import ManifestError
from tests.conftest import shared_path


def test_the_layout_names_the_adapter(iemocap_demo, meld_demo, tmp_path):
    assert detect_corpus(iemocap_demo) == "iemocap"
    assert detect_corpus(meld_demo) == "meld"
    (tmp_path / "mine.CSV").write_text("dialogue_id,utterance_id\n")
    assert detect_corpus(tmp_path / "mine.CSV") == "csv"
    with pytest.raises(ManifestError, match="prepare.corpus=auto: .*nothing does not exist; check prepare.root"):
        detect_corpus(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="empty is neither a .csv file, a released feature file \\(.pkl\\), a MELD.Raw folder .* name the "
                                            "adapter: prepare.corpus: iemocap | meld | csv"):
        detect_corpus(tmp_path / "empty")


def test_the_real_releases_are_recognised():
    assert detect_corpus(shared_path("meld", "MELD.Raw")) == "meld"
    assert detect_corpus(shared_path("iemocap_text", "iemocap_text.csv")) == "csv"
