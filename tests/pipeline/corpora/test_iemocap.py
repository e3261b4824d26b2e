import shutil
from pathlib import Path

import pytest

from config.prepare import PrepareOptions
from pipeline.corpora import iemocap, load_corpus
from pipeline.lib.manifest import ManifestError


def test_demo_corpus_in_release_layout(iemocap_demo):
    m, log = load_corpus("iemocap", iemocap_demo, dev_dialogues=2, seed=0)
    t = m.table
    assert m.labels == iemocap.LABELS and set(t["label"]) <= set(iemocap.LABELS)
    assert set(t.loc[t.split == "test", "dialogue_id"].str[:5]) == {"Ses05"}
    assert not (t.loc[t.split != "test", "dialogue_id"].str[:5] == "Ses05").any()
    assert t.loc[t.split == "dev", "dialogue_id"].nunique() == 2
    # Excluded labels are logged one by one, with the label found.
    excluded = log.table().query("problem == 'label outside the 6-way set'")
    assert len(excluded) > 0 and set(excluded["detail"]) <= {"xxx", "oth", "sur", "fea"}
    assert not set(excluded["utterance_id"]) & set(t["utterance_id"])
    for _, d in t.groupby("dialogue_id"):
        assert d["start_s"].is_monotonic_increasing and d["turn"].tolist() == list(range(len(d)))
    row = t.iloc[0]
    assert row["speaker"] == row["utterance_id"].rsplit("_", 1)[1][0]
    assert row["speaker_idx"] == {"M": 0, "F": 1}[row["speaker"]]
    assert row["video_side"] == {"F": "left", "M": "right"}[row["speaker"]]
    assert row["audio_path"] == f"Session{int(row['dialogue_id'][3:5])}/sentences/wav/{row['dialogue_id']}/{row['utterance_id']}.wav"
    assert row["video_path"].endswith(f"dialog/avi/DivX/{row['dialogue_id']}.avi")
    assert (row["video_start_s"], row["video_end_s"]) == (row["start_s"], row["end_s"])
    assert all(m.media_path(p).is_file() for p in t["audio_path"]) and t["text"].str.len().min() > 0


def test_transcript_and_evaluation_are_parsed_exactly(tmp_path):
    root = _tiny_release(tmp_path, {"Ses01F_impro01": [("Ses01F_impro01_M000", 10.5, 12.0, "ang"),
                                                       ("Ses01F_impro01_F000", 6.2901, 8.2357, "neu"),
                                                       ("Ses01F_impro01_F001", 13.0, 14.0, "xxx")]})
    m, log = load_corpus("iemocap", root, PrepareOptions(modalities=("text",)), dev_dialogues=0)
    t = m.table
    assert t["utterance_id"].tolist() == ["Ses01F_impro01_F000", "Ses01F_impro01_M000"]
    assert t["text"].tolist() == ["text of Ses01F_impro01_F000", "text of Ses01F_impro01_M000"]
    assert t["start_s"].tolist() == [6.2901, 10.5] and t["end_s"].tolist() == [8.2357, 12.0]
    assert t["audio_path"].tolist() == ["", ""]  # no wavs and audio not required: blanked
    assert log.rows[0]["utterance_id"] == "Ses01F_impro01_F001" and log.rows[0]["detail"] == "xxx"


def test_standard_dev_split_is_the_published_one(tmp_path):
    names = list(iemocap.STANDARD_DEV) + ["Ses01F_impro02", "Ses02M_impro03", "Ses05F_impro01"]
    root = _tiny_release(tmp_path, {n: [(f"{n}_F000", 1.0, 2.0, "neu")] for n in names})
    m, _ = load_corpus("iemocap", root, PrepareOptions(modalities=("text",)), dev_split="standard")
    split = dict(zip(m.table["dialogue_id"], m.table["split"]))
    assert sorted(d for d, s in split.items() if s == "dev") == sorted(iemocap.STANDARD_DEV)
    assert split["Ses05F_impro01"] == "test" and split["Ses01F_impro02"] == "train"
    assert m.extra_meta["dev_dialogues"] == sorted(iemocap.STANDARD_DEV)


def test_standard_dev_split_names_absent_dialogues(iemocap_demo):
    with pytest.raises(ManifestError, match="standard dev dialogues are not in the training "
                                            "sessions under this root: Ses01M_script03_1"):
        load_corpus("iemocap", iemocap_demo, dev_split="standard")


def test_random_dev_split_is_seeded(iemocap_demo):
    options = PrepareOptions(modalities=("text",))
    dev = [set(load_corpus("iemocap", iemocap_demo, options, dev_dialogues=3, seed=s)[0]
               .extra_meta["dev_dialogues"]) for s in (1, 1, 2)]
    assert dev[0] == dev[1] and dev[0] != dev[2] and len(dev[0]) == 3
    with pytest.raises(ManifestError, match="prepare.iemocap.dev_dialogues=99"):
        load_corpus("iemocap", iemocap_demo, options, dev_dialogues=99)


def test_missing_sentence_wav_follows_policy(iemocap_demo, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(iemocap_demo, root)
    wav = next((root / "Session2" / "sentences" / "wav").rglob("*.wav"))
    wav.unlink()
    uid = wav.stem
    kept, log = load_corpus("iemocap", root, PrepareOptions(on_missing_media="keep"), dev_dialogues=2)
    row = kept.table.set_index("utterance_id").loc[uid]
    assert row["audio_path"] == "" and row["video_path"] != ""
    assert log.table().query("utterance_id == @uid")[["modality", "problem", "action"]].values.tolist() == [
        ["audio", "missing file", "kept, zero features + mask"]]
    dropped, _ = load_corpus("iemocap", root, PrepareOptions(on_missing_media="drop"), dev_dialogues=2)
    assert uid not in set(dropped.table["utterance_id"]) and len(dropped.table) == len(kept.table) - 1
    with pytest.raises(ManifestError, match=f"{uid} \\(train|dev\\): audio: missing file"):
        load_corpus("iemocap", root, PrepareOptions(on_missing_media="fail"), dev_dialogues=2)


def test_a_line_in_another_encoding_is_decoded_alone_and_logged(tmp_path):
    root = _tiny_release(tmp_path, {"Ses01F_impro01": [("Ses01F_impro01_F000", 1.0, 2.0, "neu"),
                                                       ("Ses01F_impro01_M001", 2.0, 3.0, "ang")]})
    path = root / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    path.write_bytes(b"\xef\xbb\xbfSes01F_impro01_F000 [001.0000-002.0000]: don\xe2\x80\x99t\r\n"
                     b"Ses01F_impro01_M001 [002.0000-003.0000]: caf\xe9\r\n")
    m, log = load_corpus("iemocap", root, PrepareOptions(modalities=("text",)), dev_dialogues=0)
    assert m.table["text"].tolist() == ["don\u2019t", "café"]        # BOM line kept, UTF-8 intact
    [row] = log.rows
    assert (row["problem"], row["source"]) == ("line decoded with the fallback encoding", f"{path}:2")


def test_an_empty_or_malformed_annotation_file_is_logged_not_fatal(tmp_path):
    root = _tiny_release(tmp_path, {"Ses01F_impro01": [("Ses01F_impro01_F000", 1.0, 2.0, "neu"),
                                                       ("Ses01F_impro01_M001", 2.0, 3.0, "ang")]})
    folder = root / "Session1" / "dialog" / "EmoEvaluation"
    (folder / "Ses01F_impro02.txt").write_text("% header\n")
    evaluation = folder / "Ses01F_impro01.txt"
    lines = evaluation.read_text().splitlines()
    cut = next(i for i, line in enumerate(lines) if "M001" in line and line.startswith("["))
    lines[cut] = lines[cut][: lines[cut].rindex("[") + 4]              # the VAD bracket cut off
    evaluation.write_text("\n".join(lines) + "\n")
    m, log = load_corpus("iemocap", root, PrepareOptions(modalities=("text",)), dev_dialogues=0)
    assert m.table["utterance_id"].tolist() == ["Ses01F_impro01_F000"]
    rows = {r["problem"]: r for r in log.rows}
    assert rows["malformed annotation line"]["utterance_id"] == "Ses01F_impro01_M001"
    assert rows["malformed annotation line"]["source"] == f"{evaluation}:{cut + 1}"
    assert rows["empty dialogue"]["dialogue_id"] == "Ses01F_impro02"


def test_bad_root_and_params_are_named(tmp_path):
    with pytest.raises(ManifestError, match="IEMOCAP release root not found"):
        load_corpus("iemocap", tmp_path / "nope")
    with pytest.raises(ManifestError, match="no Session<N> directories"):
        load_corpus("iemocap", tmp_path)
    with pytest.raises(ManifestError, match="prepare.iemocap.dev_size: unknown parameter"):
        load_corpus("iemocap", tmp_path, dev_size=3)
    with pytest.raises(ManifestError, match="prepare.corpus: unknown corpus 'iemocapp'"):
        load_corpus("iemocapp", tmp_path)


def _tiny_release(tmp_path: Path, dialogues: dict[str, list[tuple[str, float, float, str]]]) -> Path:
    """Text-only IEMOCAP tree: EmoEvaluation + transcriptions for the given utterances."""
    root = tmp_path / "IEMOCAP_full_release"
    for name, utts in dialogues.items():
        dialog = root / f"Session{int(name[3:5])}" / "dialog"
        (dialog / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
        (dialog / "transcriptions").mkdir(parents=True, exist_ok=True)
        (dialog / "EmoEvaluation" / f"{name}.txt").write_text(
            "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n" + "".join(
                f"[{s:.4f} - {e:.4f}]\t{u}\t{lab}\t[2.5000, 2.5000, 2.5000]\nC-E2:\tNeutral;\t()\n\n"
                for u, s, e, lab in utts))
        (dialog / "transcriptions" / f"{name}.txt").write_text("".join(
            f"{u} [{s:08.4f}-{e:08.4f}]: text of {u}\n" for u, s, e, _ in utts))
    return root


def test_read_to_predict_on_every_annotated_turn_is_kept(iemocap_demo):
    labelled, log = load_corpus("iemocap", iemocap_demo, dev_dialogues=2)
    m, unlabelled_log = load_corpus("iemocap", iemocap_demo, PrepareOptions(labelled=False), dev_dialogues=2)
    excluded = log.table().query("problem == 'label outside the 6-way set'")
    assert len(excluded) and not unlabelled_log.table().query("problem == 'label outside the 6-way set'").size
    t = m.table.set_index("utterance_id")
    assert len(t) == len(labelled.table) + len(excluded)
    assert t.loc[excluded["utterance_id"], "label"].tolist() == excluded["detail"].tolist()
    for _, d in m.table.groupby("dialogue_id"):            # in their place in the dialogue
        assert d["start_s"].is_monotonic_increasing and d["turn"].tolist() == list(range(len(d)))
