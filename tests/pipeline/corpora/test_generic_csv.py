from pathlib import Path

import pytest

from pipeline.corpora import iemocap, load_corpus
from pipeline.corpora.common import PrepareOptions
from pipeline.lib.manifest import ManifestError
from tests.conftest import shared_path

TEXT_ONLY = PrepareOptions(modalities=("text",))
HEADER = "dialogue_id,turn,utterance_id,speaker,text,label,split\n"
GOOD = ("d1,0,d1_a,A,hello,neu,train\n"
        "d1,1,d1_b,B,hi,ang,train\n"
        "d2,0,d2_a,A,bye,neu,test\n")


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "corpus.csv"
    path.write_text(header + body, encoding="utf-8")
    return path


def test_minimal_csv(tmp_path):
    m, log = load_corpus("csv", write(tmp_path, GOOD), TEXT_ONLY, labels=["neu", "ang"], name="mine")
    assert m.corpus == "mine" and m.labels == ["neu", "ang"] and not log.rows
    assert m.table[["utterance_id", "speaker_idx", "split"]].values.tolist() == [
        ["d1_a", 0, "train"], ["d1_b", 1, "train"], ["d2_a", 0, "test"]]
    assert Path(m.root) == tmp_path


def test_turn_defaults_to_row_order_and_labels_are_inferred(tmp_path):
    path = write(tmp_path, "d1,d1_b,B,x,sad,dev\nd1,d1_a,A,y,hap,dev\n",
                 header="dialogue_id,utterance_id,speaker,text,label,split\n")
    m, _ = load_corpus("csv", path, TEXT_ONLY)
    assert m.labels == ["hap", "sad"]
    assert m.table.set_index("utterance_id")["turn"].to_dict() == {"d1_b": 0, "d1_a": 1}


@pytest.mark.parametrize("body, expected", [
    (GOOD.replace("d1_b", "d1_a"), "duplicate utterance id 'd1_a' at lines 2, 3"),
    (GOOD.replace("ang", "joy"), "line 3 (utterance d1_b): unknown label 'joy' (label set: neu, ang)"),
    (GOOD.replace("d1,1,", "d1,2,"), "dialogue 'd1': turns must be 0..1 without gaps or repeats, found 0, 2 at lines 2, 3"),
    (GOOD.replace("d2,0,", ",0,"), "line 4 (utterance d2_a): empty dialogue_id (utterance without a dialogue)"),
    (GOOD.replace("d1,1,", "d1,one,"), "line 3 (utterance d1_b): turn must be a number, got 'one'"),
    (GOOD.replace("test", "valid"), "line 4 (utterance d2_a): unknown split 'valid'"),
])
def test_validation_errors_name_the_csv_line(tmp_path, body, expected):
    with pytest.raises(ManifestError) as err:
        load_corpus("csv", write(tmp_path, body), TEXT_ONLY, labels=["neu", "ang"])
    assert expected in str(err.value) and "corpus.csv" in str(err.value)


def test_missing_columns_and_bad_encoding(tmp_path):
    with pytest.raises(ManifestError, match="missing required column.s. speaker, label"):
        load_corpus("csv", write(tmp_path, "d,u,x\n", header="dialogue_id,utterance_id,split\n"))
    path = tmp_path / "latin.csv"
    path.write_bytes((HEADER + GOOD).encode() + "d3,0,d3_a,A,caf\xe9,neu,test\n".encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin.csv: line 5: cannot decode byte b'\\xe9'.*prepare.encoding"):
        load_corpus("csv", path, TEXT_ONLY)
    m, _ = load_corpus("csv", path, PrepareOptions(modalities=("text",), encoding="latin-1"))
    assert "café" in set(m.table["text"])
    with pytest.raises(ManifestError, match="manifest CSV not found"):
        load_corpus("csv", tmp_path / "nope.csv")


def test_media_columns_and_missing_required_media(tmp_path, iemocap_demo):
    wav = next(iemocap_demo.rglob("sentences/wav/*/*.wav"))
    body = (f"d1,0,d1_a,A,hello,neu,train,{wav},0.5,1.0\n"
            "d1,1,d1_b,B,hi,ang,train,clips/absent.wav,,\n"
            "d2,0,d2_a,A,bye,neu,test,,,\n")
    path = write(tmp_path, body, HEADER.strip() + ",audio_path,audio_start_s,audio_end_s\n")
    m, log = load_corpus("csv", path, PrepareOptions(modalities=("text", "audio")))
    t = m.table.set_index("utterance_id")
    assert t.loc["d1_a", "audio_path"] == str(wav) and m.media_path(t.loc["d1_a", "audio_path"]) == wav
    assert (t.loc["d1_a", "audio_start_s"], t.loc["d1_a", "audio_end_s"]) == (0.5, 1.0)
    assert log.table().set_index("utterance_id")["detail"].to_dict() == {
        "d1_b": str(tmp_path / "clips" / "absent.wav"), "d2_a": "no path given"}
    with pytest.raises(ManifestError, match=r"2 utterance\(s\) lack media[\s\S]*d1_b \(train\): audio: missing file"):
        load_corpus("csv", path, PrepareOptions(modalities=("text", "audio"), on_missing_media="fail"))
    text_only, log = load_corpus("csv", path, TEXT_ONLY)
    assert not log.rows and text_only.table["audio_path"].tolist() == [str(wav), "", ""]


def test_real_iemocap_csv():
    path = shared_path("iemocap_text", "iemocap_text.csv")
    m, log = load_corpus("csv", path, TEXT_ONLY, labels=iemocap.LABELS, name="iemocap_text")
    t = m.table
    assert not log.rows
    per_split = t.groupby("split").agg(d=("dialogue_id", "nunique"), u=("utterance_id", "size"))
    assert per_split.loc[["train", "dev", "test"]].values.tolist() == [[108, 5163], [12, 647], [31, 1623]]
    assert sorted(t.loc[t.split == "dev", "dialogue_id"].unique()) == sorted(iemocap.STANDARD_DEV)
    assert set(t.loc[t.split == "test", "dialogue_id"].str[:5]) == {"Ses05"}
    assert t.groupby("dialogue_id").size().agg(["max", "mean"]).round(1).tolist() == [110, 49.2]
    first = t[t.dialogue_id == "Ses02F_script01_3"].iloc[:2]
    assert first[["utterance_id", "speaker", "speaker_idx"]].values.tolist() == [
        ["Ses02F_script01_3_M001", "M", 0], ["Ses02F_script01_3_F009", "F", 1]]
