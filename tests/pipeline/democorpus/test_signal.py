"""The demo corpus plants emotion signal in every modality and in the dialogue context.

Checked with deliberately simple features (bag of words, prosody statistics, a coarse colour grid
of the speaker's face) and small classifiers (5-fold CV grouped by dialogue) on the rendered files
themselves, read back through the IEMOCAP adapter.
"""
import av
import librosa
import numpy as np
import pytest
import soundfile
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_predict

from pipeline.corpora import load_corpus
from pipeline.democorpus import generate
from pipeline.democorpus.iemocap_layout import HALF

pytestmark = pytest.mark.slow   # renders a full demo corpus and cross-validates on it


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = generate("iemocap", tmp_path_factory.mktemp("signal"), seed=5,
                    iemocap={"sessions": 5, "dialogues_per_session": 4, "turns": [14, 22]})
    m, _ = load_corpus("iemocap", root, dev_dialogues=2)
    return m


def audio_features(m):
    """Prosody: loudness, pitch level (per speaker), pitch slope, speaking-rate modulation."""
    rows = []
    for _, r in m.table.iterrows():
        wave, sr = soundfile.read(m.media_path(r["audio_path"]))
        f0 = librosa.yin(wave, fmin=70, fmax=600, sr=sr, frame_length=1024, hop_length=256)
        frames = librosa.feature.rms(y=wave, frame_length=1024, hop_length=256)[0]
        voiced = frames > 0.3 * frames.max()
        f0 = np.log(f0[: len(voiced)][voiced[: len(f0)]])
        slope = np.polyfit(np.linspace(0, 1, len(f0)), f0, 1)[0] if len(f0) > 2 else 0.0
        envelope = frames - frames.mean()
        spectrum = np.abs(np.fft.rfft(envelope, n=4096))
        rates = np.fft.rfftfreq(4096, 256 / sr)
        band = (rates > 1.5) & (rates < 9)
        rows.append([np.log(frames.mean()), np.log(frames.max()), np.median(f0), slope,
                     rates[band][spectrum[band].argmax()], r["speaker_idx"]])
    feats = np.array(rows)
    # Pitch relative to the speaker's own mean in the dialogue (voices differ).
    key = m.table["dialogue_id"] + m.table["speaker"]
    feats[:, 2] -= m.table.assign(f=feats[:, 2]).groupby(key)["f"].transform("mean").to_numpy()
    return feats


def visual_features(m):
    feats = {}
    for path, group in m.table.groupby("video_path"):
        with av.open(str(m.media_path(path))) as container:
            stream = container.streams.video[0]
            frames = [(float(f.pts * stream.time_base), f.to_ndarray(format="bgr24"))
                      for f in container.decode(stream)]
        times = np.array([t for t, _ in frames])
        for i, r in group.iterrows():
            mid = (r["video_start_s"] + r["video_end_s"]) / 2
            image = frames[int(np.abs(times - mid).argmin())][1]
            x0 = 0 if r["video_side"] == "left" else HALF
            face = image[HALF // 8: -HALF // 8, x0 + HALF // 4: x0 + 3 * HALF // 4].astype(float)
            h, w = face.shape[0] // 4, face.shape[1] // 4
            feats[i] = face[: 4 * h, : 4 * w].reshape(4, h, 4, w, 3).mean(axis=(1, 3)).ravel()
    return np.array([feats[i] for i in m.table.index])


def out_of_fold_proba(features, labels, groups, model):
    """Class probabilities for every utterance from a model that never saw its dialogue."""
    return cross_val_predict(model, features, labels, groups=groups, cv=GroupKFold(5),
                             method="predict_proba")


def test_each_modality_above_chance_and_fusion_better(corpus):
    t = corpus.table
    labels, groups = t["label"].to_numpy(), t["dialogue_id"].to_numpy()
    classes = np.unique(labels)
    majority = t["label"].value_counts(normalize=True).iloc[0]
    forest = RandomForestClassifier(300, min_samples_leaf=3, random_state=0)
    proba = {
        "text": out_of_fold_proba(CountVectorizer(binary=True).fit_transform(t["text"]), labels,
                                  groups, LogisticRegression(C=1.0, max_iter=2000)),
        "audio": out_of_fold_proba(audio_features(corpus), labels, groups, forest),
        "visual": out_of_fold_proba(visual_features(corpus), labels, groups, forest),
    }
    # Late fusion: average of the unimodal class probabilities.
    proba["fusion"] = sum(proba.values()) / 3
    acc = {name: float((classes[p.argmax(1)] == labels).mean()) for name, p in proba.items()}
    print(f"{len(t)} utterances, majority {majority:.3f}", {k: round(v, 3) for k, v in acc.items()})
    for modality in ("text", "audio", "visual"):
        assert acc[modality] > majority + 0.08, (modality, acc, majority)
    assert acc["fusion"] > max(acc["text"], acc["audio"], acc["visual"]) + 0.03, acc


def test_dialogue_context_is_informative(corpus):
    t = corpus.table
    prior = t["label"].value_counts(normalize=True)
    chance = float((prior ** 2).sum())
    previous_own = t.groupby(["dialogue_id", "speaker"])["label"].shift(1)
    previous_any = t.groupby("dialogue_id")["label"].shift(1)
    own = (previous_own == t["label"])[previous_own.notna()].mean()
    other = (previous_any == t["label"])[previous_any.notna()].mean()
    print(f"agreement: chance {chance:.3f}, own previous {own:.3f}, previous turn {other:.3f}")
    assert own > chance + 0.25 and other > chance + 0.15
