import pytest
import torch

from model.graph import relational_subgraphs

# Dialogue A: speakers 0 0 1 0 (length 4); dialogue B: speakers 1 0 (length 2, padded to 4).
SPEAKERS = torch.tensor([[0, 0, 1, 0], [1, 0, 9, 9]])
LENGTHS = torch.tensor([4, 2])


def test_hand_worked_window_2():
    adj_s, adj_c = relational_subgraphs(SPEAKERS, LENGTHS, window=2)
    # Intra-speaker, row i = receiving utterance: 1 self, 2 same speaker in the past, 3 in the future.
    assert adj_s[0].tolist() == [[1, 3, 0, 0],     # u0: u1 future same speaker; u3 beyond window
                                 [2, 1, 0, 3],     # u1: u0 past, u3 future (|3-1| = 2)
                                 [0, 0, 1, 0],     # u2: the only utterance of speaker 1
                                 [0, 2, 0, 1]]     # u3: u1 past; u0 beyond window (3 > 2)
    # Inter-speaker: 1 self, 4 other speaker in the future, 5 in the past.
    assert adj_c[0].tolist() == [[1, 0, 4, 0],
                                 [0, 1, 4, 0],
                                 [5, 5, 1, 4],     # u2 hears u0, u1 (past) and u3 (future)
                                 [0, 0, 5, 1]]
    assert adj_s[1].tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert adj_c[1].tolist() == [[1, 4, 0, 0], [5, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]


def test_window_1_and_padding_never_connects():
    adj_s, adj_c = relational_subgraphs(SPEAKERS, LENGTHS, window=1)
    assert adj_s[0, 1].tolist() == [2, 1, 0, 0] and adj_c[0, 3].tolist() == [0, 0, 5, 1]
    # Padding speaker ids equal to real ones (9 9 vs 9 9) still never connect.
    assert adj_s[1, 2:].sum() == 0 and adj_s[1, :, 2:].sum() == 0
    assert adj_c[1, 2:].sum() == 0 and adj_c[1, :, 2:].sum() == 0


def test_graphs_partition_the_window():
    speakers = torch.randint(0, 3, (5, 30))
    lengths = torch.tensor([30, 1, 17, 29, 5])
    adj_s, adj_c = relational_subgraphs(speakers, lengths, window=4)
    i = torch.arange(30)
    near = (i[None, :] - i[:, None]).abs() <= 4
    valid = i[None] < lengths[:, None]
    pairs = valid[:, :, None] & valid[:, None, :] & near
    off_diag = ~torch.eye(30, dtype=torch.bool)
    # Off the diagonal, every pair inside the window is in exactly one of the two graphs.
    assert torch.equal(((adj_s > 0) ^ (adj_c > 0)) & off_diag, pairs & off_diag)
    # Both graphs are mirror images: past one way is future the other way.
    assert torch.equal(adj_s == 2, (adj_s == 3).transpose(1, 2))
    assert torch.equal(adj_c == 5, (adj_c == 4).transpose(1, 2))


def test_bad_window():
    with pytest.raises(ValueError, match="window=0"):
        relational_subgraphs(SPEAKERS, LENGTHS, window=0)
