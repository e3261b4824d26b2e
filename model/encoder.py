"""Utterance encoder of one modality (AMB-DSGDN, Eq. 1-6).

- Eq. 1: linear projection of the modality's features to ``d_hidden``.
- Eq. 2-3 (contextual modalities: audio and visual by default): sinusoidal position encoding of the
  turn + speaker embedding ``s_i`` (one table shared by the modalities, owned by the model), then
  dropout (public code).
- Eq. 4-6: one Transformer encoder layer: multi-head self-attention over the dialogue's utterances
  (padding and absent utterances masked out as keys) with residual, then the position-wise
  feed-forward ``W2 GELU(W1 LN(x)) + x`` of width ``d_hidden`` (public code: ``d_ff = hidden_dim``).

Text is only projected (Eq. 1), as in the paper; ``contextual=True`` gives it the Transformer path.
The sigmoid gate of the public code acts after the graph blocks (:mod:`model.ambdsgdn`).
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
    r"""Eq. 1-6 for one modality:

    .. math::
        x_i = W f_i + b \quad (1); \qquad
        x \leftarrow \mathrm{drop}(x + PE + s) \quad (2\text{-}3,\ contextual\ only)

        x \leftarrow x + \mathrm{MHA}(x, x, x;\ mask), \quad
        x \leftarrow W_2\,\mathrm{GELU}(W_1\,\mathrm{LN}(x)) + x \quad (4\text{-}6,\ contextual\ only)

    Args:
        d_in: feature width of the modality. d_hidden: :math:`d_h`. contextual: the Transformer
        path (audio and visual by default; text is only projected). heads: attention heads.
        dropout: encoder dropout.

    Shapes:
        ``x`` :math:`(B, L, d_{in})`, ``available`` :math:`(B, L)` bool, ``speaker_vectors``
        :math:`(B, L, d_h)` or None -> :math:`(B, L, d_h)`.
    """

    def __init__(self, d_in: int, d_hidden: int = 512, contextual: bool = False, heads: int = 8,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(d_in, d_hidden)                                       # Eq. 1
        self.contextual = contextual
        if contextual:
            self.input_dropout = Dropout(dropout)
            self.attention = SelfAttention(d_hidden, heads, dropout)                   # Eq. 4
            self.ff_norm = nn.LayerNorm(d_hidden, eps=1e-6)                            # Eq. 5
            self.feed_forward = nn.Sequential(nn.Linear(d_hidden, d_hidden), nn.GELU(),
                                              Dropout(dropout), nn.Linear(d_hidden, d_hidden))
            self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, available: torch.Tensor,
                speaker_vectors: torch.Tensor | None = None) -> torch.Tensor:
        """``available`` (B, L): True on real utterances that have this modality; ``speaker_vectors``
        (B, L, d_hidden): ``s_i`` of Eq. 3 (contextual encoders only)."""
        h = self.project(x)
        if not self.contextual:
            return h
        if speaker_vectors is None:
            raise ValueError("a contextual encoder needs the speaker embeddings (Eq. 3)")
        h = h + sinusoidal_positions(h.shape[1], h.shape[2], h.device) + speaker_vectors  # Eq. 3
        h = self.input_dropout(h)
        attended = self.attention(h, key_padding_mask=~available)
        h = h + self.dropout(attended)
        h = h + self.dropout(self.feed_forward(self.ff_norm(h)))
        return h.masked_fill(~available[..., None], 0.0)
