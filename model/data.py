"""Dialogues from the manifest + feature caches, batched as padded tensors for the model."""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch


@dataclass
class Dialogue:
    dialogue_id: str
    rows: np.ndarray                    # manifest row indices in turn order
    speakers: np.ndarray                # speaker_idx per turn
    labels: np.ndarray                  # label index per turn (-1: unlabelled or outside the set)


@dataclass
class Batch:
    features: dict[str, torch.Tensor]   # modality -> (B, L, d_m), zeros on padding/missing
    present: dict[str, torch.Tensor]    # modality -> (B, L) bool: the utterance has that feature
    speakers: torch.Tensor              # (B, L) long
    lengths: torch.Tensor               # (B,) long
    labels: torch.Tensor                # (B, L) long (0 on padding)
    real: torch.Tensor                  # (B, L) bool: a real utterance, not padding
    dialogue_ids: list[str]
    rows: list[np.ndarray]

    def to(self, device: torch.device) -> Batch:
        return Batch({m: x.to(device) for m, x in self.features.items()},
                     {m: x.to(device) for m, x in self.present.items()},
                     self.speakers.to(device), self.lengths.to(device), self.labels.to(device),
                     self.real.to(device), self.dialogue_ids, self.rows)


def dialogues(table: pd.DataFrame, labels: Sequence[str], split: str | None) -> list[Dialogue]:
    """The dialogues of ``split`` (None: every row, e.g. a conversation to predict) in turn order
    (manifest rows keep their index). A label outside ``labels`` (or none) is index -1."""
    index = {lab: i for i, lab in enumerate(labels)}
    part = table if split is None else table[table["split"] == split]
    part = part.sort_values(["dialogue_id", "turn"], kind="stable")
    return [Dialogue(dia, g.index.to_numpy(), g["speaker_idx"].to_numpy(),
                     g["label"].map(index).fillna(-1).to_numpy().astype(np.int64))
            for dia, g in part.groupby("dialogue_id", sort=True)]


def collate(group: Sequence[Dialogue], matrices: Mapping[str, np.ndarray],
            present: Mapping[str, np.ndarray]) -> Batch:
    """Pad a group of dialogues to the longest one (``matrices``: modality -> (N, d) features)."""
    lengths = [len(d.rows) for d in group]
    b, n = len(group), max(lengths)
    feats = {m: torch.zeros(b, n, x.shape[1]) for m, x in matrices.items()}
    has_features = {m: torch.zeros(b, n, dtype=torch.bool) for m in matrices}
    speakers = torch.zeros(b, n, dtype=torch.long)
    labels = torch.zeros(b, n, dtype=torch.long)
    for i, d in enumerate(group):
        k = len(d.rows)
        for m, x in matrices.items():
            feats[m][i, :k] = torch.from_numpy(x[d.rows])
            has_features[m][i, :k] = torch.from_numpy(present[m][d.rows])
        speakers[i, :k] = torch.from_numpy(d.speakers.astype(np.int64))
        labels[i, :k] = torch.from_numpy(d.labels.astype(np.int64))
    lengths_t = torch.tensor(lengths)
    real = torch.arange(n)[None] < lengths_t[:, None]
    return Batch(feats, has_features, speakers, lengths_t, labels, real, [d.dialogue_id for d in group],
                 [d.rows for d in group])


BUCKET = 8  # batches per length-sorting window


def batches(items: Sequence[Dialogue], batch_size: int, matrices: Mapping[str, np.ndarray],
            present: Mapping[str, np.ndarray], rng: np.random.Generator | None = None
            ) -> Iterator[Batch]:
    """Batches of ``batch_size`` dialogues.

    With ``rng`` (training): shuffled, then sorted by length inside windows of ``BUCKET`` batches
    so a batch holds dialogues of similar length (less padding), then the batches are shuffled.
    Without: in the given order.
    """
    for group in length_batches([len(d.rows) for d in items], batch_size, rng, window=BUCKET):
        yield collate([items[i] for i in group], matrices, present)


def length_batches(lengths: Sequence[int], batch_size: int, rng: np.random.Generator | None = None, *,
                   window: int = BUCKET, sort: bool = False) -> list[np.ndarray]:
    """Index batches of similar lengths, the one length-bucketed batcher (dialogues here, utterances
    in the text fine-tuning): with ``rng``, the indices shuffled, sorted by length within windows of
    ``window`` batches, then the batches shuffled; without, in order (``sort``: by length)."""
    n = len(lengths)
    if rng is None:
        order = np.argsort(lengths, kind="stable") if sort else np.arange(n)
        return [order[s:s + batch_size] for s in range(0, n, batch_size)]
    order, out = rng.permutation(n), []
    for s in range(0, n, batch_size * window):
        chunk = sorted(order[s:s + batch_size * window], key=lambda i: lengths[i])
        out += [np.array(chunk[k:k + batch_size]) for k in range(0, len(chunk), batch_size)]
    return [out[i] for i in rng.permutation(len(out))]
