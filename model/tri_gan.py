"""AR-IIGCN's tri-modal GAN (arXiv 2312.16778): "a generator and a discriminator per modality make
the modalities interact and remove their heterogeneity". Only the abstract is public; the form
follows the same authors' public code for AGF-IB (the issue quotes it), our choices marked.

Per modality ``m``:

- generator :math:`G_m`: Linear -> ReLU -> LSTM (hidden ``d_gen``; AGF-IB: 512 IEMOCAP, 1024 MELD),
  over the dialogue's utterances in order;
- discriminator :math:`D_m`: two stacked BiLSTMs -> Linear -> one logit per utterance (AGF-IB ends
  in a Sigmoid and BCE; we keep the logit and use BCE-with-logits: the same loss, stable in fp16).

Losses (BCE throughout, over real utterances only, as AGF-IB): :math:`D_m` treats its own
modality's generated sequence as real and the other modalities' as generated,

.. math::
    L_D = \\sum_m \\Big[\\mathrm{BCE}(D_m(G_m(h_m)), 1)
          + \\sum_{n \\ne m} \\mathrm{BCE}(D_m(G_n(h_n)), 0)\\Big]

and each generator is trained to make the other modalities' discriminators answer "real",

.. math::
    L_G = \\sum_n \\sum_{m \\ne n} \\mathrm{BCE}(D_m(G_n(h_n)), 1).

At the equilibrium no discriminator can tell the modalities apart: the generated representations
share one space. The discriminators see the generated sequences detached (their step moves only
their own weights); the generator loss joins the classification and contrastive terms (the
trainer alternates the two steps, discriminators first). Fewer than two modalities: no
GAN (nothing to tell apart).

Shapes: ``h`` modality -> :math:`(B, L, d)`, ``lengths`` :math:`(B,)`, ``mask`` :math:`(B, L)` bool.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """An LSTM over the real steps of each sequence only (a BiLSTM's backward pass never starts
    in the padding); padding positions come out as zeros."""
    packed = pack_padded_sequence(x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]


class Generator(nn.Module):
    """:math:`G_m`: Linear -> ReLU -> LSTM, (B, L, d_in) -> (B, L, d_gen)."""

    def __init__(self, d_in: int, d_gen: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_gen)
        self.lstm = nn.LSTM(d_gen, d_gen, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return _run_lstm(self.lstm, F.relu(self.proj(x)), lengths)


class Discriminator(nn.Module):
    """:math:`D_m`: two stacked BiLSTMs -> Linear, (B, L, d_gen) -> (B, L) logits."""

    def __init__(self, d_gen: int, d_disc: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(d_gen, d_disc, num_layers=2, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * d_disc, 1)

    def forward(self, g: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.out(_run_lstm(self.lstm, g, lengths)).squeeze(-1)


class TriModalGAN(nn.Module):
    """One generator and one discriminator per modality; see the module docstring."""

    def __init__(self, modalities: list[str], d_in: int, d_gen: int, d_disc: int) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.generators = nn.ModuleDict({m: Generator(d_in, d_gen) for m in self.modalities})
        self.discriminators = nn.ModuleDict({m: Discriminator(d_gen, d_disc) for m in self.modalities})

    @property
    def active(self) -> bool:
        return len(self.modalities) > 1

    def generate(self, h: dict[str, torch.Tensor], lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        return {m: self.generators[m](h[m], lengths) for m in self.modalities}

    def discriminator_loss(self, g: dict[str, torch.Tensor], lengths: torch.Tensor,
                           mask: torch.Tensor) -> torch.Tensor:
        """:math:`L_D` on generated sequences (detached: only the discriminators learn from it)."""
        terms = []
        for m in self.modalities:
            for n in self.modalities:
                logits = self.discriminators[m](g[n].detach(), lengths)[mask]
                target = torch.full_like(logits, 1.0 if n == m else 0.0)
                terms.append(F.binary_cross_entropy_with_logits(logits.float(), target.float()))
        return torch.stack(terms).sum()

    def generator_loss(self, g: dict[str, torch.Tensor], lengths: torch.Tensor,
                       mask: torch.Tensor) -> torch.Tensor:
        """:math:`L_G`: every other modality's discriminator should answer "real"."""
        terms = []
        for n in self.modalities:
            for m in self.modalities:
                if m != n:
                    logits = self.discriminators[m](g[n], lengths)[mask]
                    terms.append(F.binary_cross_entropy_with_logits(logits.float(),
                                                                    torch.ones_like(logits).float()))
        return torch.stack(terms).sum()
