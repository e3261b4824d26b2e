import numpy as np
import pandas as pd
import pytest
import soundfile

from extractors import get_extractor
from extractors.base import ExtractorError, UtteranceFailure
from extractors.media_io import load_audio
from tests.conftest import shared_path


def row(audio_path, start=np.nan, end=np.nan):
    return pd.Series({"audio_path": audio_path, "audio_start_s": start, "audio_end_s": end})


@pytest.mark.parametrize("name", ["Ses01F_impro05_F009.wav", "Ses03M_impro06_F016.wav"])
def test_is10_on_real_iemocap_wavs(name):
    path = shared_path("real_media", name)
    e = get_extractor("audio", "opensmile", {"feature_set": "IS10"})
    assert e.dim == 1582 and e.identity()["config"] == "IS10_paraling_compat.conf"
    v = e.forward([e.load(row(str(path)), lambda p: path)])
    assert v.shape == (1, 1582) and np.isfinite(v).all() and np.unique(v).size > 1000


def test_feature_sets_and_librosa_dims():
    wave = load_audio(shared_path("real_media", "Ses01F_impro05_F009.wav"))
    for feature_set, dim in [("eGeMAPSv02", 88), ("emobase", 988)]:
        e = get_extractor("audio", "opensmile", {"feature_set": feature_set})
        assert e.dim == dim and e.forward([wave]).shape == (1, dim)
    lib = get_extractor("audio", "librosa", {"n_mfcc": 13})
    v = lib.forward([wave, wave[:8000]])
    assert lib.dim == 4 * (2 * 13 + 7) + 2 == v.shape[1] and np.isfinite(v).all()
    with pytest.raises(ExtractorError, match="extract.audio.opensmile.feature_set='IS99'"):
        get_extractor("audio", "opensmile", {"feature_set": "IS99"})


def test_span_cut_from_dialogue_wav_matches_the_sentence_wav(iemocap_manifest):
    """The dialogue wav cut at an utterance's span holds that utterance's own recording."""
    m = iemocap_manifest
    r = m.table.iloc[3]
    sentence, sr = soundfile.read(m.media_path(r["audio_path"]), dtype="float32")
    dialogue = m.media_path(r["audio_path"]).parents[3] / "dialog" / "wav" / f"{r['dialogue_id']}.wav"
    cut = load_audio(dialogue, r["start_s"], r["end_s"])
    assert abs(len(cut) - len(sentence)) <= 2
    n = min(len(cut), len(sentence))
    assert np.corrcoef(cut[:n], sentence[:n])[0, 1] > 0.95  # a wrong span gives ~0


def test_audio_from_mp4_and_failures(meld_manifest, tmp_path):
    m = meld_manifest
    r = m.table[m.table["audio_path"] != ""].iloc[0]
    wave = load_audio(m.media_path(r["audio_path"]))
    assert abs(len(wave) / 16000 - (r["end_s"] - r["start_s"])) < 0.15  # AAC padding only
    assert np.abs(wave).max() > 0.01
    part = load_audio(m.media_path(r["audio_path"]), 0.2, 0.7)
    assert abs(len(part) - 8000) <= 2
    avi = shared_path("real_media", "Ses01M_script02_2_M054_neutral.avi")
    with pytest.raises(UtteranceFailure, match="no audio stream"):
        load_audio(avi)
    with pytest.raises(UtteranceFailure, match="zero-length span"):
        get_extractor("audio", "opensmile").load(row("x.wav", 2.0, 2.0), lambda p: tmp_path / p)
    with pytest.raises(UtteranceFailure, match="no media"):
        get_extractor("audio", "opensmile").load(row(""), lambda p: None)
    with pytest.raises(UtteranceFailure, match="after the end"):
        load_audio(shared_path("real_media", "Ses01F_impro05_F009.wav"), 100.0, 101.0)
