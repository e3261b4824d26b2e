from pathlib import Path

import pytest

from config.prepare import PrepareOptions
from pipeline.corpora import iemocap, load_corpus
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


def test_a_duplicate_id_refuses_the_corpus_naming_the_lines(tmp_path):
    with pytest.raises(ManifestError, match="duplicate utterance id 'd1_a' at lines 2, 3") as err:
        load_corpus("csv", write(tmp_path, GOOD.replace("d1_b", "d1_a")), TEXT_ONLY, labels=["neu", "ang"])
    assert "corpus.csv" in str(err.value)


@pytest.mark.parametrize("body, problem, detail", [
    (GOOD.replace("ang", "joy"), "unknown label", "'joy' (label set: neu, ang)"),
    (GOOD.replace("d1,1,d1_b,B,hi,ang", ",1,d1_b,B,hi,ang"), "empty dialogue_id", "utterance without a dialogue"),
    (GOOD.replace("d1,1,", "d1,one,"), "malformed turn", "turn must be a whole number >= 0, got 'one'"),
    (GOOD.replace("hi,ang,train", "hi,ang,valid"), "unknown split", "'valid' (expected one of train, dev, test)"),
    (GOOD.replace("d1,1,d1_b,B,hi,ang,train", "d1,1,d1_b,B,hi,ang,train,extra"), "malformed CSV row",
     "8 fields, the header has 7"),
])
def test_a_bad_row_is_excluded_and_logged_with_its_line(tmp_path, body, problem, detail):
    m, log = load_corpus("csv", write(tmp_path, body), TEXT_ONLY, labels=["neu", "ang"])
    assert m.table["utterance_id"].tolist() == ["d1_a", "d2_a"]       # the rest of the corpus stays
    [row] = log.rows
    assert row["problem"] == problem and detail in row["detail"] and row["utterance_id"] == "d1_b"
    assert row["source"] == f"{tmp_path / 'corpus.csv'}:3" and row["action"] in ("utterance excluded",
                                                                                 "row excluded")


def test_turn_gaps_are_renumbered_and_logged(tmp_path):
    m, log = load_corpus("csv", write(tmp_path, GOOD.replace("d1,1,", "d1,2,")), TEXT_ONLY)
    assert m.table.set_index("utterance_id")["turn"].to_dict() == {"d1_a": 0, "d1_b": 1, "d2_a": 0}
    assert [(r["problem"], r["detail"]) for r in log.rows] == [("turn gap", "turn(s) 1 absent")]


def test_missing_columns_and_bad_encoding(tmp_path):
    with pytest.raises(ManifestError, match="missing required column.s. speaker, label"):
        load_corpus("csv", write(tmp_path, "d,u,x\n", header="dialogue_id,utterance_id,split\n"))
    path = tmp_path / "latin.csv"
    # A BOM, CRLF line ends, genuine UTF-8 (a typographic apostrophe) and one latin-1 line.
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + GOOD.replace("hello", "don\u2019t")).replace("\n", "\r\n").encode()
                     + "d3,0,d3_a,A,caf\xe9,neu,test\r\n".encode("latin-1"))
    m, log = load_corpus("csv", path, TEXT_ONLY)
    assert m.table.set_index("utterance_id")["text"].to_dict() == {
        "d1_a": "don\u2019t", "d1_b": "hi", "d2_a": "bye", "d3_a": "caf\xe9"}
    [row] = log.rows
    assert (row["problem"], row["source"]) == ("line decoded with the fallback encoding", f"{path}:5")
    assert "b'\\xe9'" in row["detail"] and "cp1252" in row["detail"]
    with pytest.raises(ValueError, match="prepare.fallback_encoding: unknown encoding 'klingon'"):
        load_corpus("csv", path, PrepareOptions(modalities=("text",), fallback_encoding="klingon"))
    with pytest.raises(ManifestError, match="manifest CSV not found"):
        load_corpus("csv", tmp_path / "nope.csv")


def test_media_columns_and_missing_required_media(tmp_path, iemocap_demo):
    wav = next(iemocap_demo.rglob("sentences/wav/*/*.wav"))
    body = (f"d1,0,d1_a,A,hello,neu,train,{wav},0.5,1.0\n"
            "d1,1,d1_b,B,hi,ang,train,clips/absent.wav,,\n"
            "d2,0,d2_a,A,bye,neu,test,,,\n")
    path = write(tmp_path, body, HEADER.strip() + ",audio_path,audio_start_s,audio_end_s\n")
    m, log = load_corpus("csv", path, PrepareOptions(modalities=("text", "audio"), allow_outside_root=True))
    t = m.table.set_index("utterance_id")
    assert t.loc["d1_a", "audio_path"] == str(wav) and m.media_path(t.loc["d1_a", "audio_path"]) == wav
    assert (t.loc["d1_a", "audio_start_s"], t.loc["d1_a", "audio_end_s"]) == (0.5, 1.0)
    assert log.table().set_index("utterance_id")["detail"].to_dict() == {
        "d1_b": str(tmp_path / "clips" / "absent.wav"), "d2_a": "no path given"}
    with pytest.raises(ManifestError, match=r"2 utterance\(s\) lack media[\s\S]*d1_b \(train\): audio: missing file"):
        load_corpus("csv", path, PrepareOptions(modalities=("text", "audio"), on_missing_media="fail",
                                                     allow_outside_root=True))
    text_only, log = load_corpus("csv", path, PrepareOptions(modalities=("text",), allow_outside_root=True))
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


def test_line_ends_utf16_and_unreadable_records(tmp_path):
    import csv

    head = "dialogue_id,utterance_id,speaker,label,split,text"
    (tmp_path / "cr.csv").write_bytes(f"{head}\rd1,u1,A,neu,train,a\rd1,u2,B,neu,train,b\r".encode())
    (tmp_path / "utf16.csv").write_bytes(f"{head}\nd1,u1,A,neu,train,caf\u00e9\n".encode("utf-16"))
    (tmp_path / "quote.csv").write_text(f'{head}\nd1,u1,A,neu,train,"unclosed\nd1,u2,B,neu,train,b\n')
    assert load_corpus("csv", tmp_path / "cr.csv", TEXT_ONLY)[0].table["text"].tolist() == ["a", "b"]
    assert load_corpus("csv", tmp_path / "utf16.csv", TEXT_ONLY)[0].table["text"].tolist() == ["caf\u00e9"]
    m, log = load_corpus("csv", tmp_path / "quote.csv", TEXT_ONLY)
    [row] = log.rows      # the swallowed row is not silent: the record over two lines is logged
    assert row["problem"] == "CSV record over several lines" and "u2" in row["detail"]
    (tmp_path / "huge.csv").write_text(f"{head}\nd1,u1,A,neu,train,{'x' * 100}\nd1,u2,B,neu,train,ok\n")
    limit = csv.field_size_limit(64)          # a record the csv module refuses to read
    try:
        m, log = load_corpus("csv", tmp_path / "huge.csv", TEXT_ONLY)
    finally:
        csv.field_size_limit(limit)
    assert m.table["utterance_id"].tolist() == ["u2"]
    assert log.rows[0]["problem"] == "malformed CSV row" and log.rows[0]["source"].endswith("huge.csv:2")


def test_read_to_predict_on_labels_and_splits_are_optional(tmp_path):
    from pipeline.lib import manifest

    path = write(tmp_path, "d1,d1_a,A,hello\nd1,d1_b,B,hi\nd2,d2_a,A,bye\n",
                 header="dialogue_id,utterance_id,speaker,text\n")
    with pytest.raises(ManifestError, match="missing required column\\(s\\) label, split"):
        load_corpus("csv", path, TEXT_ONLY)
    unlabelled = PrepareOptions(modalities=("text",), labelled=False)
    m, log = load_corpus("csv", path, unlabelled)
    assert not m.labelled and not log.rows and len(m.table) == 3 and set(m.table["label"]) == {""}
    manifest.write(m, log.table(), tmp_path / "prepared")
    again = manifest.read(tmp_path / "prepared")
    assert not again.labelled and again.table["utterance_id"].tolist() == m.table["utterance_id"].tolist()
    # Labels outside the set and odd splits are kept as given (gold for the record, never used).
    m, log = load_corpus("csv", write(tmp_path, GOOD.replace("ang,train", "xxx,later")), unlabelled,
                         labels=["neu", "ang"])
    assert m.table.set_index("utterance_id").loc["d1_b", ["label", "split"]].tolist() == ["xxx", "later"]
    assert not log.rows


def test_speaker_ids_can_be_given(tmp_path):
    header = "dialogue_id,utterance_id,speaker,speaker_idx,text,label,split\n"
    body = "d1,d1_a,F,1,hello,neu,train\nd1,d1_b,M,0,hi,ang,train\nd1,d1_c,M,-1,x,neu,train\n"
    m, log = load_corpus("csv", write(tmp_path, body, header), TEXT_ONLY, labels=["neu", "ang"])
    assert m.table.set_index("utterance_id")["speaker_idx"].to_dict() == {"d1_a": 1, "d1_b": 0}
    assert log.table()[["utterance_id", "problem", "detail"]].values.tolist()[0] == [
        "d1_c", "malformed speaker_idx", "speaker_idx must be a whole number >= 0, got '-1'"]
