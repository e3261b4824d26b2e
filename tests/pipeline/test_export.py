"""Released feature files through the stages: a small file of each layout prepared, its vectors
cached by the ``pickled`` family, trained and evaluated on; and our caches exported to each layout
and read back to the same vectors, labels, speakers, order and splits."""
import json

import numpy as np
import pytest

from extractors.feature_pickles import read_feature_file
from pipeline import evaluate, export, extract, prepare, train
from tests import released
from tests.conftest import REPO

MODEL = ["model.d_hidden=16", "model.window=4", "model.encoder_heads=2"]
TRAIN = ["train.epochs=4", "train.batch_size=4", "train.lr=1e-2", "train.warm_up_epochs=1", "train.seeds=[0]"]
ENTRIES = {"amb_dsgdn": {"text": "roberta_mean", "audio": "videoAudio", "visual": "videoVisual"},
           "mmgcn": {"text": "videoText", "audio": "videoAudio", "visual": "videoVisual"},
           "dialoguegcn": {"text": "videoText", "audio": "videoAudio"},
           "cosmic": {"text": "roberta1"}}


def stage(module, *args: str) -> None:
    assert module.main(["--params", str(REPO / "params.yaml"), "--set", "device=cpu", *args]) == 0


def imported(tmp_path, layout: str, corpus: str) -> tuple[object, list[str]]:
    """The file prepared and every modality it has extracted; returns the file and the --set args."""
    path = released.write(tmp_path / f"{corpus}_{layout}.pkl", layout, corpus)
    modalities = list(ENTRIES[layout])
    sets = [f"modalities={json.dumps(modalities)}", f"prepare.root={path}"]
    for modality, entry in ENTRIES[layout].items():
        sets += [f"extract.{modality}.name=pickled",
                 f"extract.{modality}.pickled={{file: {path}, entry: {entry}}}"]
    args = [a for s in sets for a in ("--set", s)]
    stage(prepare, *args, "--out", str(tmp_path / "prepared"))
    for modality in modalities:
        stage(extract, modality, *args, "--manifest", str(tmp_path / "prepared"),
              "--out", str(tmp_path / "features" / modality))
    return read_feature_file(path), args


def test_train_and_evaluate_on_a_released_file(tmp_path):
    ff, args = imported(tmp_path, "amb_dsgdn", "iemocap")
    meta = json.loads((tmp_path / "prepared" / "manifest.meta.json").read_text())
    assert meta["dev_split"] == "standard: the 12 standard IEMOCAP dev dialogues"
    cache = json.loads((tmp_path / "features" / "text" / "meta.json").read_text())
    assert cache["identity"]["file_sha256"] == ff.sha256 and cache["identity"]["entry"] == "roberta_mean"
    sets = [a for s in MODEL + TRAIN for a in ("--set", s)]
    dirs = ["--manifest", str(tmp_path / "prepared"), "--features", str(tmp_path / "features")]
    stage(train, *args, *sets, *dirs, "--out", str(tmp_path / "model"))
    stage(evaluate, *args, *sets, *dirs, "--models", str(tmp_path / "model"), "--out", str(tmp_path / "metrics"))
    details = json.loads((tmp_path / "metrics" / "ambdsgdn.details.json").read_text())
    assert details["dev_split"].startswith("standard") and details["feature_file"]["sha256"] == ff.sha256
    assert details["counts"]["test"] == sum(len(ff.labels[d]) for d in ff.splits["test"])
    assert details["test_wa_f1"]["mean"] > 0.5      # the built file's labels show in its vectors
    assert "test_wa_f1" in details["reference_protocol"]   # the paper's best-test-epoch figure, labelled


def test_a_dialogue_the_manifest_and_file_disagree_on_fails_its_utterances(tmp_path):
    ff, _ = imported(tmp_path, "mmgcn", "meld")
    other = released.write(tmp_path / "other.pkl", "mmgcn", "meld", seed=1)    # other dialogue lengths
    args = ["--set", "modalities=[audio]", "--set", "extract.audio.name=pickled",
            "--set", f"extract.audio.pickled={{file: {other}, entry: videoAudio}}",
            "--set", "extract.audio.max_failed_fraction=1.0"]
    stage(extract, "audio", *args, "--manifest", str(tmp_path / "prepared"), "--out", str(tmp_path / "other"))
    failures = json.loads((tmp_path / "other" / "meta.json").read_text())["failures"]
    assert failures and all("utterances in" in f["reason"] and "in the manifest" in f["reason"]
                            for f in failures)


@pytest.mark.parametrize("layout, corpus, fmt", [
    ("amb_dsgdn", "iemocap", "amb_dsgdn"), ("mmgcn", "meld", "mmgcn"), ("cosmic", "iemocap", "cosmic"),
    ("cosmic", "meld", "cosmic"), ("dialoguegcn", "meld", "cosmic")])
def test_export_then_import_gives_the_same_file(tmp_path, layout, corpus, fmt):
    ff, args = imported(tmp_path, layout, corpus)
    stage(export, *args, "--format", fmt, "--manifest", str(tmp_path / "prepared"),
          "--features", str(tmp_path / "features"), "--out", str(tmp_path / "export"))
    out = tmp_path / "export" / f"{corpus}_{fmt}.pkl"
    back = read_feature_file(out)
    sidecar = json.loads(out.with_name(out.name + ".json").read_text())
    assert sidecar["sha256"] == back.sha256 and sidecar["format"] == fmt and sidecar["corpus"] == corpus
    assert sidecar["features"]["text"]["identity"]["file_sha256"] == ff.sha256
    assert (back.layout, back.corpus, back.int_ids) == (fmt, corpus, ff.int_ids)
    # Splits: the same dialogues; dev (held out of the file's train list) has validIds in COSMIC's
    # layout only, and is folded back into train elsewhere.
    dev = set(json.loads((tmp_path / "prepared" / "manifest.meta.json").read_text())["dev_dialogues"])
    source_train = set(ff.splits["train"]) | set(ff.splits.get("valid", []))
    if fmt == "cosmic":
        assert set(back.splits["valid"]) == dev and set(back.splits["train"]) == source_train - dev
    else:
        assert set(back.splits["train"]) == source_train
    assert set(back.splits["test"]) == set(ff.splits["test"])
    for dia in ff.dialogues:
        assert back.labels[dia] == ff.labels[dia] and back.speakers[dia] == ff.speakers[dia]
        assert back.sentences[dia] == ff.sentences[dia]
        if ff.utterance_ids and fmt != "cosmic":      # COSMIC's layout has no utterance ids
            assert back.utterance_ids[dia] == ff.utterance_ids[dia]
        for modality, entry in ENTRIES[layout].items():
            item = {"text": "roberta1" if fmt == "cosmic" else "videoText", "audio": "videoAudio",
                    "visual": "videoVisual"}[modality]
            if item in back.vectors:
                assert np.array_equal(back.entry(item)[dia], ff.entry(entry)[dia]), (dia, modality)


def test_export_refuses_what_a_layout_cannot_hold(tmp_path, capsys):
    imported(tmp_path, "cosmic", "iemocap")      # text only
    code = export.main(["--params", str(REPO / "params.yaml"), "--set", "modalities=[text]",
                        "--set", "extract.text.name=pickled",
                        "--set", f"extract.text.pickled={{file: {tmp_path / 'iemocap_cosmic.pkl'}, entry: roberta1}}",
                        "--format", "mmgcn", "--manifest", str(tmp_path / "prepared"),
                        "--features", str(tmp_path / "features"), "--out", str(tmp_path / "export")])
    assert code == 1
    assert "the mmgcn layout holds text, audio, visual features; this run has no audio, visual" \
        in capsys.readouterr().err


def test_export_off_writes_a_marker(tmp_path):
    stage(export, "--out", str(tmp_path / "export"))
    assert json.loads((tmp_path / "export" / export.OFF_FILE).read_text())["enabled"] is False
