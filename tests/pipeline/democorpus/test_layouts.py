import hashlib
import re
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile

from pipeline.democorpus import generate, story
from tests.conftest import SMALL_IEMOCAP, SMALL_MELD


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("layout, sizes", [("iemocap", {"iemocap": SMALL_IEMOCAP}),
                                           ("meld", {"meld": SMALL_MELD})])
def test_same_seed_same_bytes(tmp_path, layout, sizes):
    first = digest(generate(layout, tmp_path / "a", seed=7, **sizes))
    again = digest(generate(layout, tmp_path / "b", seed=7, **sizes))
    other = digest(generate(layout, tmp_path / "c", seed=8, **sizes))
    assert first == again and first != other and len(first) > 10


def test_iemocap_release_layout(iemocap_demo):
    assert iemocap_demo.name == "IEMOCAP_full_release"
    assert sorted(p.name for p in iemocap_demo.iterdir()) == [f"Session{i}" for i in range(1, 6)]
    dialog = iemocap_demo / "Session1" / "dialog"
    names = sorted(p.stem for p in (dialog / "EmoEvaluation").glob("*.txt"))
    assert names == ["Ses01F_impro01", "Ses01M_impro01"]
    for name in names:
        assert (dialog / "transcriptions" / f"{name}.txt").is_file()
        assert (dialog / "wav" / f"{name}.wav").is_file()
        assert (dialog / "avi" / "DivX" / f"{name}.avi").is_file()
    transcript = (dialog / "transcriptions" / "Ses01F_impro01.txt").read_text().splitlines()
    assert all(re.fullmatch(r"Ses01F_impro01_[FM]\d{3} \[\d{3}\.\d{4}-\d{3}\.\d{4}\]: .+", ln)
               for ln in transcript)
    evaluation = (dialog / "EmoEvaluation" / "Ses01F_impro01.txt").read_text()
    blocks = re.findall(r"^\[(\d+\.\d{4}) - (\d+\.\d{4})\]\t(Ses01F_impro01_[FM]\d{3})\t(\w+)\t"
                        r"\[\d\.\d{4}, \d\.\d{4}, \d\.\d{4}\]$", evaluation, re.M)
    assert len(blocks) == len(transcript) and "\nC-E1:\t" in evaluation
    uid = blocks[0][2]
    wave, sr = soundfile.read(iemocap_demo / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / f"{uid}.wav")
    assert sr == 16000 and wave.ndim == 1
    assert len(wave) / sr == pytest.approx(float(blocks[0][1]) - float(blocks[0][0]), abs=1e-3)
    with av.open(str(dialog / "avi" / "DivX" / "Ses01F_impro01.avi")) as c:
        v = c.streams.video[0]
        assert v.codec_context.codec_tag == "XVID" and (v.width, v.height) == (320, 160)
        assert float(v.frames / v.average_rate) > float(blocks[-1][1])  # video covers the dialogue


def test_meld_release_layout(meld_demo):
    assert meld_demo.name == "MELD.Raw"
    train = pd.read_csv(meld_demo / "train_sent_emo.csv", dtype=str)
    assert train.columns.tolist() == ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID",
                                     "Utterance_ID", "Season", "Episode", "StartTime", "EndTime"]
    assert train["StartTime"].str.fullmatch(r"\d\d:\d\d:\d\d,\d{3}").all()
    assert set(train["Emotion"]) <= set(story.MELD_PRIOR)
    row = train.iloc[0]
    clip = meld_demo / "train_splits" / f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}.mp4"
    with av.open(str(clip)) as c:
        assert c.streams.video and c.streams.audio
        assert c.streams.audio[0].codec_context.name == "aac"
        audio = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    assert np.abs(audio).max() > 0.01
    assert (meld_demo / "dev_splits_complete").is_dir() and (meld_demo / "output_repeated_splits_test").is_dir()
    dev = pd.read_csv(meld_demo / "dev_sent_emo.csv")
    assert len(dev) == len(list((meld_demo / "dev_splits_complete").glob("*.mp4"))) + 1  # one missing


def test_story_follows_its_parameters():
    rng = np.random.default_rng(0)
    params = story.StoryParams(reliability={"text": 1.0, "audio": 0.0, "visual": 0.5})
    turns = [t for _ in range(200) for t in
             story.simulate_dialogue(rng, ["A", "B"], 20, story.IEMOCAP_PRIOR, params)]
    shown = {m: np.mean([t.shown[m] == t.emotion for t in turns]) for m in story.MODALITIES}
    k = len(story.IEMOCAP_PRIOR)
    assert shown["text"] == 1.0
    assert shown["audio"] == pytest.approx(1 / k, abs=0.02)       # only chance agreement
    assert shown["visual"] == pytest.approx(0.5 + 0.5 / k, abs=0.02)
    switches = np.mean([a.speaker != b.speaker for a, b in zip(turns, turns[1:])])
    assert switches == pytest.approx(params.alternate, abs=0.03)


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "friends"}, "demo.layout: unknown layout 'friends'"),
    ({"story": {"reliability": {"smell": 0.5}}}, "unknown modality 'smell'"),
    ({"story": {"reliability": {"text": 1.5}}}, r"demo.story.reliability.text=1.5: must be in \[0, 1\]"),
    ({"iemocap": {"turns": [5, 2]}}, r"demo.iemocap.turns=\[5, 2\]"),
])
def test_bad_params_are_named(tmp_path, kwargs, message):
    kwargs = {"layout": "iemocap", **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(kwargs.pop("layout"), tmp_path, 0, **kwargs)
