"""One conversation to predict on: media + a CSV / SubRip / WebVTT transcript."""
import numpy as np
import pandas as pd
import pytest

from config.prepare import PrepareOptions
from pipeline.corpora import conversation
from pipeline.corpora.iemocap import TRANSCRIPT_LINE
from pipeline.lib.manifest import ManifestError

OPTIONS = PrepareOptions(modalities=("text", "audio", "visual"))


def demo_dialogue(root):
    """(avi, dialogue wav, [(speaker, start, end, text)]) of the first Session 5 dialogue."""
    dialog = root / "Session5" / "dialog"
    name = sorted(p.stem for p in (dialog / "avi" / "DivX").glob("*.avi"))[0]
    turns = []
    for line in (dialog / "transcriptions" / f"{name}.txt").read_text().splitlines():
        m = TRANSCRIPT_LINE.match(line)
        turns.append((m.group(1).rsplit("_", 1)[1][0], float(m.group(2)), float(m.group(3)), m.group(4)))
    return dialog / "avi" / "DivX" / f"{name}.avi", dialog / "wav" / f"{name}.wav", turns


def timestamp(seconds: float, sep: str = ",") -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{sep}{ms % 1000:03d}"


@pytest.mark.parametrize("value, expected", [
    ("12.5", 12.5), ("00:00:12,500", 12.5), ("01:02:03.4", 3723.4), ("00:12.500", 12.5), ("7", 7.0)])
def test_times_in_seconds_or_timestamps(value, expected):
    assert conversation.seconds(value) == pytest.approx(expected)


@pytest.mark.parametrize("value", ["", "abc", "-1", "nan", "1:2:3:4", "12,5"])
def test_bad_times_are_refused(value):
    with pytest.raises(ValueError):
        conversation.seconds(value)


def test_csv_transcript_with_video_and_audio(iemocap_demo, tmp_path):
    avi, wav, turns = demo_dialogue(iemocap_demo)
    rows = [{"speaker": s, "start": a if i % 2 else timestamp(a), "end": b, "text": t}
            for i, (s, a, b, t) in enumerate(turns)]
    path = tmp_path / "talk.csv"
    pd.DataFrame(rows[::-1]).to_csv(path, index=False)      # out of order: turns follow the times
    m, log = conversation.load(path, [avi, wav], OPTIONS, speaker_side={"F": "left", "M": "right"})
    t = m.table
    assert not m.labelled and m.corpus == "conversation" and log.rows == []
    assert t["utterance_id"].tolist() == [f"talk_{i:03d}" for i in range(len(turns))]
    assert t["text"].tolist() == [x[3] for x in turns] and (t["split"] == "").all()
    np.testing.assert_allclose(t["audio_start_s"], [x[1] for x in turns], atol=1e-3)
    np.testing.assert_allclose(t["video_end_s"], [x[2] for x in turns], atol=1e-3)
    assert set(t["audio_path"]) == {"wav/" + wav.name} and set(t["video_path"]) == {"avi/DivX/" + avi.name}
    assert m.media_path(t["audio_path"][0]) == wav.resolve()
    assert t["video_side"].tolist() == [{"F": "left", "M": "right"}[x[0]] for x in turns]
    first = {s: i for i, s in reversed(list(enumerate(dict.fromkeys(x[0] for x in turns))))}
    assert t["speaker_idx"].tolist() == [first[x[0]] for x in turns]


def test_subrip_speaker_prefixes_and_faults(iemocap_demo, tmp_path):
    avi, _, turns = demo_dialogue(iemocap_demo)
    styles = ["{s}: {t}", "[{s}] {t}", "- {s}: {t}", "<i>{s}:</i> {t}"]
    cues = [f"{i + 1}\n{timestamp(a)} --> {timestamp(b)}\n{styles[i % 4].format(s=s, t=t)}\n"
            for i, (s, a, b, t) in enumerate(turns)]
    cues.append("98\n00:01:00,000 --> 00:01:01,000\nnobody said this\n")
    cues.append("99\n00:01:02,000 -> 00:01:03,000\nF: broken arrow\n")
    path = tmp_path / "talk.srt"
    path.write_text("\n".join(cues), encoding="utf-8")
    m, log = conversation.load(path, [avi], OPTIONS, dialogue_id="d1")
    assert m.table["speaker"].tolist() == [x[0] for x in turns]
    assert m.table["text"].tolist() == [x[3] for x in turns]
    assert (m.table["audio_path"] == "").all()            # the avi has no audio stream
    faults = log.table()
    assert (faults["dialogue_id"] == "d1").all()
    no_speaker = faults[faults["problem"] == conversation.NO_SPEAKER]
    assert no_speaker["source"].tolist() == [f"{path}:{len(turns) * 4 + 2}"]
    assert (faults["problem"] == conversation.BAD_TIMING).sum() == 1
    audio = faults[faults["modality"] == "audio"]    # required by the run, not given: kept, logged
    assert len(audio) == len(turns) and set(audio["action"]) == {"kept, zero features + mask"}


def test_webvtt_voices_notes_and_cue_ids(iemocap_demo, tmp_path):
    avi, wav, turns = demo_dialogue(iemocap_demo)
    body = ["WEBVTT - a header", "", "NOTE written by a test", "", "STYLE", "::cue { color: red }", ""]
    for i, (s, a, b, t) in enumerate(turns):
        body += [f"cue-{i}"] if i % 2 else []
        body += [f"{timestamp(a, '.')[3:]} --> {timestamp(b, '.')} align:start",
                 f"<v.loud {s}>{t.replace('!', ' &amp;!')}</v>", ""]
    path = tmp_path / "talk.vtt"
    path.write_text("\n".join(body), encoding="utf-8")
    m, log = conversation.load(path, [wav, avi], OPTIONS)
    assert log.rows == [] and m.table["speaker"].tolist() == [x[0] for x in turns]
    assert m.table["text"].tolist() == [x[3].replace("!", " &!") for x in turns]
    np.testing.assert_allclose(m.table["start_s"], [x[1] for x in turns], atol=1e-3)
    (tmp_path / "bad.vtt").write_text("1\n00:00.000 --> 00:01.000\nF: hi\n")
    with pytest.raises(ManifestError, match="bad.vtt: not a WebVTT file"):
        conversation.load(tmp_path / "bad.vtt", [], OPTIONS)


def test_turns_without_times_keep_no_media_and_bad_input_is_named(iemocap_demo, tmp_path):
    avi, wav, turns = demo_dialogue(iemocap_demo)
    path = tmp_path / "talk.csv"
    rows = [{"speaker": s, "start_s": a, "end_s": b, "text": t} for s, a, b, t in turns]
    rows[1]["start_s"], rows[2]["end_s"] = "soon", ""
    pd.DataFrame(rows).to_csv(path, index=False)
    m, log = conversation.load(path, [avi, wav], PrepareOptions(modalities=("text",)))
    t = m.table.set_index("turn")
    assert len(t) == len(turns) and t.loc[1, "audio_path"] == "" and t.loc[2, "video_path"] == ""
    assert t.loc[0, "audio_path"] != ""
    faults = log.table().set_index("problem")
    assert faults.loc[conversation.BAD_TIMING, "source"] == f"{path}:3"
    assert len(log.table().query("problem == 'no time span'")) == 2
    (tmp_path / "talk.txt").write_text("F: hello")
    with pytest.raises(ManifestError, match=r"talk.txt: unknown transcript format '.txt' \(accepted: .csv"):
        conversation.load(tmp_path / "talk.txt", [], OPTIONS)
    with pytest.raises(ManifestError, match="media: .*nowhere.mp4 does not exist"):
        conversation.load(path, [tmp_path / "nowhere.mp4"], OPTIONS)
    (tmp_path / "noise.mp4").write_bytes(b"not a video")
    with pytest.raises(ManifestError, match="noise.mp4: no audio or video stream"):
        conversation.load(path, [tmp_path / "noise.mp4"], OPTIONS)
    pd.DataFrame([{"speaker": "", "text": "x"}]).to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(ManifestError, match=r"empty.csv: no usable turn \(.*empty.csv:2: empty speaker"):
        conversation.load(tmp_path / "empty.csv", [], OPTIONS)


def test_a_line_in_another_encoding_is_decoded_and_logged(tmp_path):
    path = tmp_path / "talk.srt"
    path.write_bytes("1\n00:00:01,000 --> 00:00:02,000\nAnna: caf\u00e9\n\n".encode("utf-8")
                     + "2\n00:00:03,000 --> 00:00:04,000\nBen: na\u00efve\n".encode("cp1252"))
    m, log = conversation.load(path, [], PrepareOptions(modalities=("text",)))
    assert m.table["text"].tolist() == ["caf\u00e9", "na\u00efve"]
    assert log.table()["source"].tolist() == [f"{path}:7"]


def test_speaker_ids_follow_a_given_convention(tmp_path):
    path = tmp_path / "talk.csv"
    pd.DataFrame([{"speaker": "F", "text": "hi"}, {"speaker": "M", "text": "hello"}]).to_csv(path, index=False)
    text_only = PrepareOptions(modalities=("text",))
    assert conversation.load(path, [], text_only)[0].table["speaker_idx"].tolist() == [0, 1]
    m, _ = conversation.load(path, [], text_only, speaker_index={"M": 0, "F": 1})
    assert m.table["speaker_idx"].tolist() == [1, 0]
    with pytest.raises(ManifestError, match="no id for speaker\\(s\\) 'M' \\(given for 'F'\\)"):
        conversation.load(path, [], text_only, speaker_index={"F": 1})
