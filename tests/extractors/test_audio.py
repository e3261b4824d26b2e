import numpy as np
import pandas as pd
import pytest
import soundfile

from extractors import get_extractor
from extractors.base import ExtractorError, UtteranceFailure
from extractors.media_io import load_audio
from pipeline.lib import media
from tests.conftest import shared_path


def row(audio_path, start=np.nan, end=np.nan):
    return pd.Series({"audio_path": audio_path, "audio_start_s": start, "audio_end_s": end})


@pytest.mark.parametrize("name", ["Ses01F_impro05_F009.wav", "Ses03M_impro06_F016.wav"])
def test_is10_on_real_iemocap_wavs(name):
    path = shared_path("real_media", name)
    e = get_extractor("audio", "opensmile", {"feature_set": "IS10"}, device="cpu")
    assert e.dim == 1582 and e.identity()["config"] == "IS10_paraling_compat.conf"
    v = e.forward([e.load(row(str(path)), lambda p: path)])
    assert v.shape == (1, 1582) and np.isfinite(v).all() and np.unique(v).size > 1000


def test_feature_sets_and_librosa_dims():
    wave = load_audio(shared_path("real_media", "Ses01F_impro05_F009.wav"))
    for feature_set, dim in [("eGeMAPSv02", 88), ("emobase", 988)]:
        e = get_extractor("audio", "opensmile", {"feature_set": feature_set}, device="cpu")
        assert e.dim == dim and e.forward([wave]).shape == (1, dim)
    lib = get_extractor("audio", "librosa", {"n_mfcc": 13}, device="cpu")
    v = lib.forward([wave, wave[:8000]])
    assert lib.dim == 4 * (2 * 13 + 7) + 2 == v.shape[1] and np.isfinite(v).all()
    with pytest.raises(ExtractorError, match="extract.audio.opensmile.feature_set='IS99'"):
        get_extractor("audio", "opensmile", {"feature_set": "IS99"}, device="cpu")


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
        get_extractor("audio", "opensmile", device="cpu").load(row("x.wav", 2.0, 2.0), lambda p: tmp_path / p)
    with pytest.raises(UtteranceFailure, match="no media"):
        get_extractor("audio", "opensmile", device="cpu").load(row(""), lambda p: None)
    with pytest.raises(UtteranceFailure, match="after the end"):
        load_audio(shared_path("real_media", "Ses01F_impro05_F009.wav"), 100.0, 101.0)


@pytest.mark.parametrize("samples, reason", [
    (np.r_[np.full(8000, 0.1), np.nan, np.full(8000, 0.1)], "non-finite audio samples .* \\(1 NaN/Inf\\)"),
    (np.zeros(16000), "silent audio .*every sample is zero"),
    (0.1 * np.sin(np.arange(480)), "too short: 30 ms < 100 ms, the extractor's minimum"),
])
def test_degenerate_audio_is_refused_before_extraction(tmp_path, samples, reason):
    path = tmp_path / "bad.wav"
    soundfile.write(path, samples.astype(np.float32), 16000, subtype="FLOAT")
    for name in ("opensmile", "librosa"):
        e = get_extractor("audio", name, device="cpu")
        with pytest.raises(UtteranceFailure, match=reason):
            e.load(row(str(path)), lambda p: path)


def test_a_span_past_the_end_of_the_audio_is_a_fault(tmp_path, meld_demo):
    path = tmp_path / "two_seconds.wav"
    soundfile.write(path, 0.1 * np.sin(np.arange(32000) / 5).astype(np.float32), 16000)
    assert len(load_audio(path, 1.0, 2.05)) == 16000                  # within rounding: kept, cut
    with pytest.raises(UtteranceFailure, match="span ends at 3.000 s, past the end of two_seconds.wav"):
        load_audio(path, 1.0, 3.0)
    with pytest.raises(UtteranceFailure, match="span starts at 2.500 s, after the end"):
        load_audio(path, 2.5, 3.0)
    clip = next(c for c in sorted(meld_demo.rglob("*.mp4")) if media.probe(c, "audio") is None)
    duration = len(load_audio(clip)) / 16000                            # a container: same rule
    with pytest.raises(UtteranceFailure, match="past the end of"):
        load_audio(clip, 0.0, duration + 1.0)
