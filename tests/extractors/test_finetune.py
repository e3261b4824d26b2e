"""Fine-tuning a text encoder on a corpus' train split, with a tiny BERT built here, on a slice of the
real IEMOCAP transcripts (skipped without ../shared)."""
import hashlib
import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from config.prepare import PrepareOptions
from extractors import get_extractor
from extractors.base import ExtractorError
from extractors.runner import collect
from extractors.store import FeatureStore
from extractors.text import finetune as ft
from extractors.text.hf_transformers import FINETUNE_FILE
from model.context_free import fit_logistic_regression
from pipeline.corpora import load_corpus
from tests.conftest import needs_cuda, shared_path

LABELS = ["neu", "hap", "sad", "ang", "exc", "fru"]
FAST = {"epochs": 5, "lr": 3e-3, "batch_size": 16, "patience": 5}


def iemocap_slice(path, per_split):
    table = pd.read_csv(shared_path("iemocap_text", "iemocap_text.csv"), dtype=str, keep_default_na=False)
    parts = [table[table["dialogue_id"].isin(table.loc[table.split == s, "dialogue_id"].unique()[:n])]
             for s, n in per_split.items()]
    pd.concat(parts).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = iemocap_slice(tmp_path_factory.mktemp("slice") / "iemocap.csv", {"train": 24, "dev": 5, "test": 3})
    return load_corpus("csv", path, PrepareOptions(modalities=("text",)), labels=LABELS, name="iemocap")[0]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory, corpus):
    """A 2-layer, 32-d BERT (random weights) + a WordPiece tokenizer trained on the train texts."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    wordpiece = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wordpiece.normalizer = normalizers.BertNormalizer(lowercase=True)
    wordpiece.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    train_texts = corpus.table.loc[corpus.table["split"] == "train", "text"].tolist()
    wordpiece.train_from_iterator(train_texts, trainers.WordPieceTrainer(vocab_size=1200, special_tokens=specials))
    cls, sep = wordpiece.token_to_id("[CLS]"), wordpiece.token_to_id("[SEP]")
    wordpiece.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=wordpiece, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, corpus, tiny_bert):
    out = tmp_path_factory.mktemp("tuned") / "text"
    config = ft.FinetuneConfig(base_model=str(tiny_bert), **FAST)
    return out, ft.finetune(corpus.table, LABELS, config, out, device="cpu", progress=False, log=lambda s: None)


def probe_dev_wa_f1(model_dir, corpus, store) -> float:
    """Dev wa-F1 of a logistic regression (C picked on dev) on the encoder's extracted features."""
    e = get_extractor("text", "transformers", {"model": str(model_dir), "pooling": "mean"}, "cpu")
    got = collect(corpus.table, corpus.media_path, e, params={}, store=store, progress=False)
    x = np.stack([got.vectors[u] for u in corpus.table["utterance_id"]])
    y = corpus.table["label"].map({label: i for i, label in enumerate(LABELS)}).to_numpy()
    train, dev = (corpus.table["split"] == s for s in ("train", "dev"))
    return fit_logistic_regression(x[train], y[train], x[dev], y[dev], Cs=[0.01, 0.1, 1.0]).dev_wa_f1


def test_finetuning_improves_dev_f1_over_the_frozen_encoder(tuned, corpus, tiny_bert, tmp_path):
    out, provenance = tuned
    store = FeatureStore(tmp_path / "store")
    frozen, finetuned = probe_dev_wa_f1(tiny_bert, corpus, store), probe_dev_wa_f1(out, corpus, store)
    assert finetuned > frozen + 0.05, (frozen, finetuned)
    assert provenance["selected"]["dev_wa_f1"] > frozen
    saved = json.loads((out / FINETUNE_FILE).read_text())
    assert saved["selected"] == provenance["selected"] and saved["corpus"] == "iemocap"
    assert saved["params"]["lr"] == FAST["lr"] and saved["base_identity"]["weights_sha256"]
    curve = pd.read_csv(out / ft.CURVE_FILE)
    assert curve["dev_wa_f1"].max() == pytest.approx(saved["selected"]["dev_wa_f1"])
    assert not (out / ft.RESUME_DIR).exists() and (out / "model.safetensors").is_file()


def test_only_train_utterances_reach_the_optimiser(corpus, tiny_bert, tmp_path, monkeypatch):
    seen = []
    real = ft.tokenize

    def spy(tokenizer, inputs, max_length):
        if torch.is_grad_enabled():            # the training forward; evaluation runs without grad
            seen.extend(inputs)
        return real(tokenizer, inputs, max_length)

    monkeypatch.setattr(ft, "tokenize", spy)
    config = ft.FinetuneConfig(base_model=str(tiny_bert), **{**FAST, "epochs": 2})
    provenance = ft.finetune(corpus.table, LABELS, config, tmp_path / "out", device="cpu", progress=False,
                             log=lambda s: None)
    t = corpus.table
    train = t[t["split"] == "train"]
    assert sorted(provenance["trained_on"]) == sorted(train["utterance_id"])
    assert len(seen) == 2 * len(train) and set(seen) <= set(train["text"].str.strip())
    held_out = set(t.loc[t["split"] != "train", "text"]) - set(train["text"])
    assert held_out and not held_out & set(seen)
    assert provenance["train_dialogues"] == sorted(set(train["dialogue_id"]))


def test_the_extractor_refuses_another_corpus_or_a_leaking_split(tuned, corpus, tmp_path):
    out, provenance = tuned
    store = FeatureStore(tmp_path / "store")
    e = get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu")
    identity = e.full_identity()["finetune"]
    assert identity["corpus"] == "iemocap" and identity["split_sha256"] == ft.split_sha256(corpus.table)
    assert identity["params"]["base_model"] == provenance["base_model"]
    other = corpus.table.assign(corpus="meld")
    with pytest.raises(ExtractorError, match="fine-tuned on the 'iemocap' corpus .* asked to extract 'meld'"):
        collect(other, corpus.media_path, e, params={}, store=store, progress=False)
    trained = provenance["train_dialogues"][0]
    resplit = corpus.table.assign(split=np.where(corpus.table["dialogue_id"] == trained, "test",
                                                 corpus.table["split"]))
    with pytest.raises(ExtractorError, match=f"fine-tuned on 1 dialogue\\(s\\) that are dev/test here \\({trained}\\)"):
        collect(resplit, corpus.media_path, e, params={}, store=store, progress=False)
    # Predicting on new conversations (an unlabelled table) is what a fine-tuned encoder is for.
    unlabelled = corpus.table.assign(corpus="conversation", split="")
    assert len(collect(unlabelled, corpus.media_path, e, params={}, store=store, progress=False,
                       labelled=False).vectors) == len(corpus.table)
    with pytest.raises(ExtractorError, match="pooling='cls': .* was fine-tuned with pooling 'mean'"):
        get_extractor("text", "transformers", {"model": str(out), "pooling": "cls"}, "cpu")


def test_context_turns_are_read_as_the_encoder_was_tuned(corpus, tiny_bert, tmp_path):
    config = ft.FinetuneConfig(base_model=str(tiny_bert), context_turns=2, **{**FAST, "epochs": 1})
    out = tmp_path / "ctx"
    ft.finetune(corpus.table, LABELS, config, out, device="cpu", progress=False, log=lambda s: None)
    e = get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu")
    assert e.context_turns == 2 and e.full_identity()["context_turns"] == 2
    with pytest.raises(ExtractorError, match="context_turns=0: .* fine-tuned with context_turns 2"):
        get_extractor("text", "transformers", {"model": str(out), "pooling": "mean", "context_turns": 0}, "cpu")
    dialogue = corpus.table[corpus.table["dialogue_id"] == corpus.table["dialogue_id"].iloc[0]].head(4)
    store = FeatureStore(tmp_path / "store")
    before = collect(dialogue, corpus.media_path, e, params={}, store=store, progress=False)
    changed = dialogue.copy()
    changed.iloc[1, changed.columns.get_loc("text")] = "Something else entirely, said before."
    after = collect(changed, corpus.media_path, e, params={}, store=store, progress=False)
    uids = dialogue["utterance_id"].tolist()
    np.testing.assert_array_equal(before.vectors[uids[0]], after.vectors[uids[0]])   # no earlier turn
    assert not np.allclose(before.vectors[uids[2]], after.vectors[uids[2]])          # reads turn 1
    assert before.keys[uids[2]] != after.keys[uids[2]]                               # so does its key


def kill_in_epoch_two(monkeypatch) -> None:
    """The next fine-tuning (one dev evaluation per epoch) is killed at epoch 2's evaluation."""
    real, calls = ft.evaluate, []

    def killed(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(ft, "evaluate", killed)


def test_a_killed_run_resumes_to_the_same_weights(corpus, tiny_bert, tmp_path, monkeypatch):
    config = ft.FinetuneConfig(base_model=str(tiny_bert), **{**FAST, "epochs": 2})

    def digest(folder):
        return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()

    ft.finetune(corpus.table, LABELS, config, tmp_path / "whole", device="cpu", progress=False, log=lambda s: None)
    kill_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ft.finetune(corpus.table, LABELS, config, tmp_path / "killed", device="cpu", progress=False,
                    log=lambda s: None)
    assert json.loads((tmp_path / "killed" / ft.RESUME_DIR / "state.json").read_text())["epoch"] == 1
    monkeypatch.undo()
    said = []
    resumed = ft.finetune(corpus.table, LABELS, config, tmp_path / "killed", device="cpu", progress=False,
                          log=said.append)
    assert any("resuming after epoch 1" in line for line in said)
    assert digest(tmp_path / "killed") == digest(tmp_path / "whole")
    assert len(resumed["trained_on"]) == len(corpus.table.query("split == 'train'"))


def test_the_stage_resumes_a_killed_run_after_dvc_deleted_its_output(corpus, tiny_bert, tmp_path, monkeypatch,
                                                                      capsys):
    """`dvc repro` deletes a stage's output before it runs the stage again: the progress is kept beside it."""
    from pipeline import finetune as stage
    from pipeline.lib import manifest

    prepared, out = tmp_path / "prepared", tmp_path / "out"
    manifest.write(corpus, pd.DataFrame(), prepared)
    params = {"finetune": {"enabled": True, "base_model": str(tiny_bert), **FAST, "epochs": 2}, "device": "cpu"}
    whole = stage.run(params, prepared, tmp_path / "whole", progress=False)
    stage.run({"finetune": {"enabled": False}}, prepared, out)         # the default's marker was there
    kill_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        stage.run(params, prepared, out, progress=False)
    monkeypatch.undo()
    shutil.rmtree(out, ignore_errors=True)                               # what dvc repro does next
    capsys.readouterr()
    stage.run(params, prepared, out, progress=False)
    assert "resuming after epoch 1" in capsys.readouterr().out
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()
    # Every file of the output, provenance and curve included, is the uninterrupted run's: the
    # seconds went to the untracked timings beside it.
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert {"finetune.json", "curve.csv"} <= {str(f) for f in files}
    for f in files:
        assert (out / f).read_bytes() == (tmp_path / "whole" / f).read_bytes(), f
    assert json.loads((tmp_path / "whole.timings.json").read_text())["minutes"] > 0
    assert not stage.work_dir(out).exists()
    monkeypatch.setattr(ft, "evaluate", lambda *a, **k: pytest.fail("a finished fine-tuning ran again"))
    assert stage.run(params, prepared, out, progress=False)["run_key"] == whole["run_key"]


def test_the_stage_off_writes_a_marker_the_extractor_refuses(corpus, tmp_path):
    from pipeline import finetune as stage
    from pipeline.lib import manifest

    manifest.write(corpus, pd.DataFrame(), tmp_path / "prepared")
    assert stage.run({"finetune": {"enabled": False}}, tmp_path / "prepared", tmp_path / "off") == {"enabled": False}
    assert json.loads((tmp_path / "off" / FINETUNE_FILE).read_text()) == {"enabled": False}
    with pytest.raises(ExtractorError, match="fine-tuning is disabled \\(finetune.enabled: false\\)"):
        get_extractor("text", "transformers", {"model": str(tmp_path / "off")}, "cpu")
    with pytest.raises(ValueError, match="finetune.epoch: unknown key"):
        stage.run({"finetune": {"enabled": True, "epoch": 3}}, tmp_path / "prepared", tmp_path / "bad")
    with pytest.raises(ValueError, match="finetune.crossfit_folds=-1: 0 \\(off\\) or the number of folds"):
        stage.run({"finetune": {"enabled": True, "crossfit_folds": -1}}, tmp_path / "prepared", tmp_path / "bad")
    with pytest.raises(ValueError, match="finetune.crossfit_folds=1: 0 \\(off\\) or the number of folds"):
        stage.run({"finetune": {"enabled": True, "crossfit_folds": 1}}, tmp_path / "prepared", tmp_path / "bad")


def test_cross_fitting_encodes_each_train_utterance_with_the_fold_that_never_saw_it(corpus, tiny_bert, tmp_path,
                                                                                    monkeypatch):
    config = ft.FinetuneConfig(base_model=str(tiny_bert), **{**FAST, "epochs": 2, "evals_per_epoch": 2})
    out, t = tmp_path / "cf", corpus.table
    provenance = ft.finetune_with_folds(t, LABELS, config, out, folds=3, device="cpu", progress=False,
                                        log=lambda s: None)
    fold_of = provenance["crossfit"]["fold_of"]
    train = t[t["split"] == "train"]
    assert sorted(fold_of) == sorted(set(train["dialogue_id"]))
    sizes = np.bincount(list(fold_of.values()))
    assert len(sizes) == 3 and sizes.max() - sizes.min() <= 1
    assert fold_of == ft.crossfit_assignment(t, 3, config.seed)              # a rerun deals the same folds
    stop_at = [provenance["selected"][k] for k in ("epoch", "evaluation")]
    assert provenance["crossfit"]["stop_at"] == stop_at
    for fold in range(3):   # each fold encoder trained on exactly the other folds' train utterances ...
        run = json.loads((out / ft.CROSSFIT_DIR / f"fold_{fold}" / FINETUNE_FILE).read_text())
        others = train[train["dialogue_id"].map(fold_of) != fold]
        assert sorted(run["trained_on"]) == sorted(others["utterance_id"])
        # ... for as long as the whole-train encoder was selected at: no selection of its own
        assert [run["selected"][k] for k in ("epoch", "evaluation")] == stop_at
        assert len(pd.read_csv(out / ft.CROSSFIT_DIR / f"fold_{fold}" / ft.CURVE_FILE)) == 1
    assert sorted(provenance["trained_on"]) == sorted(train["utterance_id"])

    store = FeatureStore(tmp_path / "store")
    e = get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu")
    assert e.full_identity()["finetune"]["crossfit"]["weights_sha256"] == provenance["crossfit"]["weights_sha256"]
    routed = collect(t, corpus.media_path, e, params={}, store=store, progress=False)
    whole = collect(t.assign(corpus="conversation", split=""), corpus.media_path, e, params={}, store=store,
                    progress=False, labelled=False)          # new conversations: the whole-train encoder
    for fold in range(3):
        alone = get_extractor("text", "transformers", {"model": str(out / ft.CROSSFIT_DIR / f"fold_{fold}"),
                                                       "pooling": "mean"}, "cpu")
        mine = train.loc[train["dialogue_id"].map(fold_of) == fold, "utterance_id"]
        oracle = collect(t[t["utterance_id"].isin(mine)], corpus.media_path, alone, params={},
                         store=FeatureStore(tmp_path / f"alone{fold}"), progress=False)
        for uid in mine:
            np.testing.assert_allclose(routed.vectors[uid], oracle.vectors[uid], rtol=1e-5, atol=1e-6)
            assert not np.allclose(routed.vectors[uid], whole.vectors[uid], atol=1e-4)
            assert routed.keys[uid] != whole.keys[uid]
    for uid in t.loc[t["split"] != "train", "utterance_id"]:
        np.testing.assert_array_equal(routed.vectors[uid], whole.vectors[uid])

    said = []
    monkeypatch.setattr(ft, "evaluate", lambda *a, **k: pytest.fail("a finished fine-tuning ran again"))
    again = ft.finetune_with_folds(t, LABELS, config, out, folds=3, device="cpu", progress=False, log=said.append)
    assert again["crossfit"] == provenance["crossfit"] and sum("already holds" in line for line in said) == 4
    off = ft.finetune_with_folds(t, LABELS, config, out, folds=0, device="cpu", progress=False, log=said.append)
    assert "crossfit" not in off and not (out / ft.CROSSFIT_DIR).exists()
    assert "crossfit" not in get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu").full_identity()[
        "finetune"]
    monkeypatch.undo()

    ft.finetune_with_folds(t, LABELS, config, out, folds=2, device="cpu", progress=False, log=lambda s: None)
    (out / ft.CROSSFIT_DIR / "fold_1" / "model.safetensors").unlink()
    with pytest.raises(ExtractorError, match="fold_1: the fold encoder is missing or not the one finetune.json"):
        get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu")
    with pytest.raises(ExtractorError, match="crossfit_folds=40: the manifest has only 24 train dialogues"):
        ft.finetune_with_folds(t, LABELS, config, out, folds=40, device="cpu", progress=False, log=lambda s: None)


def test_a_model_split_across_packages_is_assembled_for_from_pretrained(tiny_bert, tmp_path):
    import zipfile

    from extractors.text import assemble

    joined = tmp_path / "model.zip"
    with zipfile.ZipFile(joined, "w") as z:
        for f in tiny_bert.iterdir():
            z.write(f, f"tiny/{f.name}")
        z.writestr("tiny/desktop.ini", "[.ShellClassInfo]")
    data = joined.read_bytes()
    parts = []
    for i in range(3):
        parts.append(tmp_path / f"model.zip.{i + 1:03d}")
        parts[-1].write_bytes(data[i * len(data) // 3:(i + 1) * len(data) // 3])
    archive = assemble.Archive(("tiny-part-001", "tiny-part-002", "tiny-part-003"), "tiny/")
    out = assemble.assemble("tiny", tmp_path / "out", parts=parts, archive=archive)
    assert not (out / "desktop.ini").exists() and json.loads((out / assemble.MARKER).read_text())["parts"][2][
        "distribution"] == "tiny-part-003"
    e = get_extractor("text", "transformers", {"model": str(out), "pooling": "mean"}, "cpu")
    assert e.dim == 32 and e.full_identity()["weights_sha256"] == get_extractor(
        "text", "transformers", {"model": str(tiny_bert), "pooling": "mean"}, "cpu").full_identity()["weights_sha256"]
    with pytest.raises(ExtractorError, match="do not form a zip archive"):
        assemble.assemble("tiny", tmp_path / "bad", parts=parts[::-1], archive=archive)
    with pytest.raises(ExtractorError, match="tiny-part-001 is not installed: make install-benchmark"):
        assemble.assemble("tiny", tmp_path / "none", archive=archive)


class Overflowing(torch.amp.GradScaler):
    """An enabled loss scaler whose every step overflows, as fp16 gradients can on CUDA."""

    def unscale_(self, optimizer) -> None:
        optimizer.param_groups[0]["params"][0].grad.view(-1)[0] = float("inf")
        super().unscale_(optimizer)


def schedule_steps(monkeypatch) -> list[int]:
    """The scheduler's step count at each dev evaluation of the next fine-tuning."""
    seen, real = [], ft.FinetuneTrainee.evaluate

    def spy(self):
        seen.append(self.scheduler.last_epoch)
        return real(self)

    monkeypatch.setattr(ft.FinetuneTrainee, "evaluate", spy)
    return seen


def test_steps_the_loss_scaler_skips_move_neither_the_weights_nor_the_schedule(corpus, tiny_bert, tmp_path,
                                                                                monkeypatch):
    config = ft.FinetuneConfig(base_model=str(tiny_bert), **{**FAST, "epochs": 1})
    steps = math.ceil(len(ft.examples(corpus.table, LABELS, "train", 0, {}).ids) / config.batch_size)
    seen = schedule_steps(monkeypatch)
    ft.finetune(corpus.table, LABELS, config, tmp_path / "plain", device="cpu", progress=False, log=lambda s: None)
    assert seen == [steps]                        # every step taken, every step scheduled
    monkeypatch.setattr(ft, "grad_scaler", lambda device, precision: Overflowing("cpu"))
    seen.clear()
    ft.finetune(corpus.table, LABELS, config, tmp_path / "skipped", device="cpu", progress=False,
                log=lambda s: None)
    assert seen == [0]                            # no step taken, none scheduled
    from safetensors.torch import load_file

    base, tuned = load_file(tiny_bert / "model.safetensors"), load_file(tmp_path / "skipped" / "model.safetensors")
    assert all(torch.equal(base[name], tuned[name]) for name in base)


def test_a_checkpoint_saved_in_fp16_is_loaded_tuned_and_extracted_in_float32(corpus, tiny_bert, tmp_path):
    from transformers import AutoModel

    half = tmp_path / "half"
    AutoModel.from_pretrained(tiny_bert).half().save_pretrained(half)
    for f in tiny_bert.iterdir():
        if "token" in f.name or f.name == "vocab.txt":
            shutil.copy(f, half / f.name)
    assert json.loads((half / "config.json").read_text()).get("dtype") == "float16"
    config = ft.FinetuneConfig(base_model=str(half), **{**FAST, "epochs": 1})
    ft.finetune(corpus.table, LABELS, config, tmp_path / "tuned", device="cpu", progress=False, log=lambda s: None)
    from safetensors.torch import load_file

    assert {w.dtype for w in load_file(tmp_path / "tuned" / "model.safetensors").values()} == {torch.float32}
    extractor = get_extractor("text", "transformers", {"model": str(half)}, "cpu")
    assert {p.dtype for p in extractor.model.parameters()} == {torch.float32}


@needs_cuda
def test_a_killed_fp16_run_on_cuda_resumes_to_the_same_weights(corpus, tiny_bert, tmp_path, monkeypatch):
    """The loss scaler's state is saved with the optimiser's: a resumed fp16 run continues at the
    scale it had reached, so it ends where an uninterrupted one does."""
    config = ft.FinetuneConfig(base_model=str(tiny_bert), precision="fp16", **{**FAST, "epochs": 2})
    ft.finetune(corpus.table, LABELS, config, tmp_path / "whole", device="cuda", progress=False, log=lambda s: None)
    kill_in_epoch_two(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        ft.finetune(corpus.table, LABELS, config, tmp_path / "killed", device="cuda", progress=False,
                    log=lambda s: None)
    monkeypatch.undo()
    ft.finetune(corpus.table, LABELS, config, tmp_path / "killed", device="cuda", progress=False, log=lambda s: None)
    assert ((tmp_path / "killed" / "model.safetensors").read_bytes()
            == (tmp_path / "whole" / "model.safetensors").read_bytes())


@needs_cuda
def test_amp_fine_tuning_on_cuda_improves_dev_f1_and_saves_float32_weights(corpus, tiny_bert, tmp_path,
                                                                           monkeypatch):
    """The CUDA path (fp16 autocast, gradient scaling): what the CPU test asks, on a GPU."""
    dtypes = set()
    forward = ft.Classifier.forward

    def spy(self, *args, **kwargs):
        logits = forward(self, *args, **kwargs)
        dtypes.add(logits.dtype)
        return logits

    monkeypatch.setattr(ft.Classifier, "forward", spy)
    config = ft.FinetuneConfig(base_model=str(tiny_bert), precision="fp16", **FAST)
    provenance = ft.finetune(corpus.table, LABELS, config, tmp_path / "cuda", device="cuda", progress=False,
                             log=lambda s: None)
    assert dtypes == {torch.float16} and provenance["device"].startswith("cuda")
    store = FeatureStore(tmp_path / "store")
    frozen, finetuned = probe_dev_wa_f1(tiny_bert, corpus, store), probe_dev_wa_f1(tmp_path / "cuda", corpus, store)
    assert finetuned > frozen + 0.05, (frozen, finetuned)
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "cuda" / "model.safetensors")
    assert all(w.dtype == torch.float32 and torch.isfinite(w).all() for w in weights.values())
