"""Utterance encoder of one modality (AMB-DSGDN, Eq. 1-6).

- Eq. 1: linear projection of the modality's features to ``d_hidden``.
- Eq. 2-3 (contextual modalities: audio and visual by default): sinusoidal position encoding of
  the turn + speaker embedding (the last index is the padding speaker).
- Eq. 4-5: one Transformer encoder layer: multi-head self-attention over the dialogue's utterances
  (padding masked out) with residual, then a pre-LN position-wise feed-forward (GELU) with residual.
- Eq. 6: sigmoid gate ``x * sigmoid(W x)``.

Text is only projected (Eq. 1), as in the paper's reference behaviour; ``contextual=True`` gives
it the same Transformer path.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from model.dropout import Dropout, SelfAttention


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Eq. 2: the Transformer's fixed sine/cosine encoding, ``(length, dim)``."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class ModalityEncoder(nn.Module):
    """Eq. 1-6 for one modality: ``(B, L, d_in)`` -> ``(B, L, d_hidden)``."""

    def __init__(self, d_in: int, d_hidden: int = 512, contextual: bool = False,
                 max_speakers: int = 9, heads: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(d_in, d_hidden)                                       # Eq. 1
        self.contextual = contextual
        if contextual:
            self.max_speakers = max_speakers
            self.speaker = nn.Embedding(max_speakers + 1, d_hidden, padding_idx=max_speakers)
            self.attention = SelfAttention(d_hidden, heads, dropout)                   # Eq. 4
            self.ff_norm = nn.LayerNorm(d_hidden)                                      # Eq. 5
            self.feed_forward = nn.Sequential(nn.Linear(d_hidden, 4 * d_hidden), nn.GELU(),
                                              Dropout(dropout), nn.Linear(4 * d_hidden, d_hidden))
            self.gate = nn.Linear(d_hidden, d_hidden)                                  # Eq. 6
            self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, speakers: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``mask`` (B, L) is True on real utterances; ``speakers`` (B, L) ids in [0, max_speakers)."""
        h = self.project(x)
        if not self.contextual:
            return h
        if (speakers[mask] >= self.max_speakers).any():
            raise ValueError(f"a dialogue has more than max_speakers={self.max_speakers} speakers")
        speaker_ids = speakers.masked_fill(~mask, self.max_speakers)
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device) + self.speaker(speaker_ids)
        attended = self.attention(h, key_padding_mask=~mask)
        h = h + self.dropout(attended)
        h = h + self.dropout(self.feed_forward(self.ff_norm(h)))
        h = h * torch.sigmoid(self.gate(h))
        return h.masked_fill(~mask[..., None], 0.0)
