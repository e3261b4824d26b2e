"""Relational subgraphs of a batch of dialogues (AMB-DSGDN, Eq. 7-8).

For utterances i (receiving node) and j (neighbour) of one dialogue, with speakers s and window w:

- intra-speaker graph ``Adj_s`` (Eq. 7): edges between utterances of the *same* speaker with
  |i - j| <= w; type 1 = self (j = i), 2 = past (j < i), 3 = future (j > i);
- inter-speaker graph ``Adj_c`` (Eq. 8): edges between utterances of *different* speakers with
  |i - j| <= w; type 1 = self, 4 = future (j > i), 5 = past (j < i).

0 means "no edge". Both are built at once for the whole batch from speaker ids and dialogue lengths
by broadcasting (no loop over utterance pairs); padded positions never connect, not even to
themselves.
"""
from __future__ import annotations

import torch

NO_EDGE, SELF, INTRA_PAST, INTRA_FUTURE, INTER_FUTURE, INTER_PAST = range(6)
NUM_RELATIONS = 6  # including NO_EDGE


def relational_subgraphs(speakers: torch.Tensor, lengths: torch.Tensor, window: int
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Adj_s, Adj_c)``, each ``(B, L, L)`` uint8 edge types, for ``speakers`` ``(B, L)`` (any
    integer ids; padding values are ignored) and ``lengths`` ``(B,)``."""
    if window < 1:
        raise ValueError(f"window={window}: must be >= 1")
    batch, max_len = speakers.shape
    positions = torch.arange(max_len, device=speakers.device)
    valid = positions[None, :] < lengths.to(speakers.device)[:, None]          # (B, L)
    pair = valid[:, :, None] & valid[:, None, :]                                # (B, L, L)
    offset = positions[None, :] - positions[:, None]                            # j - i, (L, L)
    near = (offset.abs() <= window)[None]
    same = speakers[:, :, None] == speakers[:, None, :]
    past, future, self_loop = (offset < 0)[None], (offset > 0)[None], (offset == 0)[None]

    def typed(*cases: tuple[torch.Tensor, int]) -> torch.Tensor:
        adj = torch.zeros(batch, max_len, max_len, dtype=torch.uint8, device=speakers.device)
        for where, kind in cases:          # the cases are disjoint; where() avoids index_put
            adj = torch.where(where & pair, kind, adj)
        return adj

    adj_s = typed((self_loop, SELF), (same & near & past, INTRA_PAST),
                  (same & near & future, INTRA_FUTURE))
    adj_c = typed((self_loop, SELF), (~same & near & future, INTER_FUTURE),
                  (~same & near & past, INTER_PAST))
    return adj_s, adj_c
