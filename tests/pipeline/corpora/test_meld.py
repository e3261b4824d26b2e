import csv

import pandas as pd
import pytest

from config.prepare import PrepareOptions
from pipeline.corpora import load_corpus, meld
from pipeline.democorpus import meld_layout
from pipeline.lib.manifest import ManifestError
from tests.conftest import shared_path


def test_demo_corpus_with_release_defects(meld_demo):
    m, log = load_corpus("meld", meld_demo)
    t = m.table.set_index("utterance_id")
    assert m.labels == meld.LABELS and set(t["label"]) <= set(meld.LABELS)
    missing = "{}_dia{}_utt{}".format(*meld_layout.MISSING_CLIP)
    corrupt = "{}_dia{}_utt{}".format(*meld_layout.CORRUPT_CLIP)
    assert t.loc[missing, ["audio_path", "video_path"]].tolist() == ["", ""]
    assert t.loc[corrupt, ["audio_path", "video_path"]].tolist() == ["", ""]
    errors = log.table().set_index(["utterance_id", "modality"])
    assert errors.loc[(missing, "audio"), "problem"] == "missing file"
    assert errors.loc[(corrupt, "visual"), "problem"] == "unreadable file"
    assert "Invalid data" in errors.loc[(corrupt, "visual"), "detail"]
    assert set(errors["action"]) == {"kept, zero features + mask"}
    ok = t.drop(index=[missing, corrupt])
    assert (ok["audio_path"] == ok["video_path"]).all() and ok["audio_path"].str.endswith(".mp4").all()
    assert ok["audio_path"].str.match(r"^(train_splits|dev_splits_complete|output_repeated_splits_test)/dia\d+_utt\d+\.mp4$").all()
    assert t["video_side"].eq("").all() and t["video_start_s"].isna().all()


def test_drop_and_fail_policies(meld_demo):
    kept, _ = load_corpus("meld", meld_demo)
    dropped, log = load_corpus("meld", meld_demo, PrepareOptions(on_missing_media="drop"))
    assert len(dropped.table) == len(kept.table) - 2
    assert set(log.table()["action"]) == {"utterance dropped"}
    for _, d in dropped.table.groupby("dialogue_id"):
        assert d["turn"].tolist() == list(range(len(d)))
    with pytest.raises(ManifestError, match=r"lack media for a required modality[\s\S]*dev_dia1_utt1 \(dev\): audio: missing file"):
        load_corpus("meld", meld_demo, PrepareOptions(on_missing_media="fail"))


def test_text_only_run_ignores_media(meld_demo):
    m, log = load_corpus("meld", meld_demo, PrepareOptions(modalities=("text",)))
    assert not log.rows  # media are not required: nothing to report ...
    assert (m.table["audio_path"] == "").sum() == 1  # ... but the missing clip has no path


@pytest.mark.parametrize("value, seconds", [("00:16:16,059", 976.059), ("1:02:03,5", 3723.5),
                                            ("00:00:00.100", 0.1)])
def test_timestamps(value, seconds):
    assert meld.timestamp_seconds(value) == pytest.approx(seconds)
    assert meld.timestamp_seconds(meld_layout.timestamp(seconds)) == pytest.approx(seconds)


def test_bad_csv_rows_are_row_faults(meld_demo, tmp_path):
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    for split, name in meld.CSV_FILES.items():
        table = pd.read_csv(meld_demo / name, dtype=str, keep_default_na=False)
        if split == "dev":
            table.loc[1, "EndTime"] = "soon"            # informational: kept, timeline blanked
            table.loc[2, "Emotion"] = "boredom"         # unknown label: excluded
            table.loc[3, "Dialogue_ID"] = "x"           # ids not integers: excluded
        table.to_csv(root / name, index=False)
    dev = pd.read_csv(root / "dev_sent_emo.csv", dtype=str, keep_default_na=False)
    with open(root / "dev_sent_emo.csv", "a", newline="") as fh:   # a row with an extra field
        csv.writer(fh).writerow([*dev.iloc[4].tolist(), "extra"])
    m, log = load_corpus("meld", root, PrepareOptions(modalities=("text",)))
    rows = {r["problem"]: r for r in log.rows if r["problem"] != "utterance id gap"}
    path = root / "dev_sent_emo.csv"
    assert set(rows) == {"malformed timestamp", "unknown label", "malformed ids", "malformed CSV row"}
    assert rows["malformed timestamp"]["source"] == f"{path}:3" and "'soon'" in rows["malformed timestamp"]["detail"]
    kept = m.table.set_index("utterance_id").loc[rows["malformed timestamp"]["utterance_id"]]
    assert pd.isna(kept["start_s"]) and pd.isna(kept["end_s"])
    assert rows["unknown label"]["source"] == f"{path}:4"
    assert rows["unknown label"]["utterance_id"] not in set(m.table["utterance_id"])
    assert rows["malformed ids"]["source"] == f"{path}:5"
    assert rows["malformed CSV row"]["detail"].startswith("12 fields, the header has 11")
    (root / "test_sent_emo.csv").write_text("Sr No.,Utterance\n1,hi\n")
    with pytest.raises(ManifestError, match="test_sent_emo.csv: missing required column.s. Speaker, Emotion"):
        load_corpus("meld", root, PrepareOptions(modalities=("text",)))


def test_real_meld_csvs():
    root = shared_path("meld", "MELD.Raw")
    m, log = load_corpus("meld", root, PrepareOptions(modalities=("text",)))
    summary = m.table.groupby("split").agg(utts=("utterance_id", "size"), dias=("dialogue_id", "nunique"))
    assert summary.loc[["train", "dev", "test"]].values.tolist() == [[9989, 1038], [1109, 114], [2610, 280]]
    assert m.table["label"].value_counts().to_dict()["neutral"] == 4710 + 470 + 1256
    gaps = log.table()
    assert set(gaps["problem"]) == {"utterance id gap"} and len(gaps) == 72 + 2 + 2
    assert "Utterance_ID 6, 7 absent" in gaps.set_index("dialogue_id").loc["train_dia1", "detail"]
    first = m.table.iloc[0]
    assert first["utterance_id"] == "train_dia0_utt0" and first["start_s"] == pytest.approx(976.059)
    assert first["text"].startswith("also I was the point person on my company\u2019s transition")
    assert m.table.groupby("dialogue_id")["speaker_idx"].min().eq(0).all()
    assert (m.table["audio_path"] == "").all()  # no media in this copy: text-only
    with pytest.raises(ManifestError, match="lack media for a required modality"):
        load_corpus("meld", root, PrepareOptions(modalities=("text", "audio"), on_missing_media="fail"))


def test_read_to_predict_on_with_only_a_test_csv_and_no_emotion_column(meld_demo, tmp_path):
    import shutil

    root = tmp_path / "MELD.Raw"
    shutil.copytree(meld_demo / meld.CLIP_DIRS["test"], root / meld.CLIP_DIRS["test"])
    table = pd.read_csv(meld_demo / meld.CSV_FILES["test"], dtype=str, keep_default_na=False)
    table.drop(columns=["Emotion", "Sentiment"]).to_csv(root / meld.CSV_FILES["test"], index=False)
    with pytest.raises(ManifestError, match="train_sent_emo.csv: MELD train CSV not found"):
        load_corpus("meld", root)
    m, log = load_corpus("meld", root, PrepareOptions(labelled=False))
    assert not m.labelled and set(m.table["split"]) == {"test"} and set(m.table["label"]) == {""}
    assert len(m.table) == len(table) and (m.table["video_path"] != "").all() and not log.rows
