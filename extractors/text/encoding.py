"""How a transformers encoder reads an utterance, shared by the text extractor and the fine-tuning
that prepares its weights (:mod:`extractors.text.finetune`), so both read it the same way:

- the input: the utterance alone, or (``context_turns`` k > 0) the pair ``("speaker: text",
  "the previous k turns, oldest first, each as speaker: text")``, the current utterance first so
  that truncation (longest first) eats into the context before it;
- the pooling: ``cls`` (the first token) or ``mean`` over the utterance's own tokens (all real
  tokens without context; the first sequence's tokens with it).
"""
from __future__ import annotations

import pandas as pd
import torch

from extractors.base import ExtractorError

Input = str | tuple[str, str]


def speaker_tagged(speaker: str, text: str) -> str:
    return f"{speaker}: {text}"


def dialogue_contexts(table: pd.DataFrame, turns: int) -> dict[str, str]:
    """utterance id -> its previous ``turns`` turns in its dialogue (oldest first, each
    ``speaker: text``; turns without text are left out), "" for a dialogue's first turn."""
    out: dict[str, str] = {}
    ordered = table.sort_values(["dialogue_id", "turn"], kind="stable")
    for _, dialogue in ordered.groupby("dialogue_id", sort=False):
        said = [speaker_tagged(s, str(t).strip()) if str(t).strip() else ""
                for s, t in zip(dialogue["speaker"], dialogue["text"])]
        for i, uid in enumerate(dialogue["utterance_id"]):
            out[uid] = " ".join(x for x in said[max(0, i - turns):i] if x)
    return out


def utterance_input(row: pd.Series, turns: int, contexts: dict[str, str]) -> Input:
    """What the encoder reads for one manifest row (its text must not be empty)."""
    text = str(row["text"]).strip()
    if turns == 0:
        return text
    return speaker_tagged(row["speaker"], text), contexts.get(row["utterance_id"], "")


LENGTH_STEP = 8   # token lengths padded up to a multiple of this (the extractor's canonical shapes)


def padded_length(tokenizer, item: Input, max_length: int) -> int:
    """The token length of ``item`` (truncated to ``max_length``) rounded up to a multiple of
    :data:`LENGTH_STEP`, at most ``max_length``: the extractor pads it to this whatever its batch."""
    if isinstance(item, tuple):
        ids = tokenizer(item[0], item[1], truncation="longest_first", max_length=max_length)["input_ids"]
    else:
        ids = tokenizer(item, truncation=True, max_length=max_length)["input_ids"]
    return min(max_length, -(-len(ids) // LENGTH_STEP) * LENGTH_STEP)


def tokenize(tokenizer, inputs: list[Input], max_length: int,
             pad_to: int | None = None) -> tuple[dict, torch.Tensor]:
    """The padded batch (to the longest input, or to ``pad_to`` >= every input's truncated
    length) and, per token, whether the mean pools over it (B, T)."""
    padding, max_length = ("max_length", pad_to) if pad_to else (True, max_length)
    if inputs and isinstance(inputs[0], tuple):
        if not getattr(tokenizer, "is_fast", False):
            raise ExtractorError("context_turns > 0 needs a fast tokenizer (tokenizer.json) to tell the "
                                 "utterance's tokens from the context's")
        first, second = zip(*inputs)
        batch = tokenizer(list(first), list(second), padding=padding, truncation="longest_first",
                          max_length=max_length, return_tensors="pt")
        own = torch.tensor([[s == 0 for s in batch.sequence_ids(i)] for i in range(len(inputs))],
                           dtype=torch.float32)
    else:
        batch = tokenizer(list(inputs), padding=padding, truncation=True, max_length=max_length,
                          return_tensors="pt")
        own = batch["attention_mask"].float()
    return dict(batch), own


def pool(hidden: torch.Tensor, own: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, T, d) hidden states -> (B, d): the first token, or the mean over the ``own`` tokens."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = own.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
