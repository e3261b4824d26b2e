import math

import pytest
import torch
from torch.nn import functional as F

from model.diffrgcn import DiffGraphAttention, DiffRGCNBlock, lambda_init_for
from model.graph import relational_subgraphs


def graphs(speakers, lengths, window=3):
    return relational_subgraphs(torch.tensor(speakers), torch.tensor(lengths), window)


def test_lambda_init_values():
    assert lambda_init_for(1) == pytest.approx(0.8 - 0.6 * math.exp(-0.3))
    assert [round(lambda_init_for(d), 4) for d in (1, 2, 3)] == [0.3555, 0.4707, 0.5561]
    layer = DiffGraphAttention(8, 8, heads=3, depth=2)
    assert layer.lambdas.shape == (4, 3, 4)                     # per head, d_out / 2 each (Eq. 13)
    assert layer.lambdas.std().item() == pytest.approx(0.1, abs=0.05)
    # With lambda vectors at zero, lambda = exp(0) - exp(0) + lambda_init.
    torch.nn.init.zeros_(layer.lambdas)
    assert torch.allclose(layer.lam(), torch.full((3,), lambda_init_for(2)))


def reference_layer(layer, x, adj):
    """Eq. 9-18 written out per head and per half, with a B x L x L x d_r relation tensor."""
    heads, d_out, half = layer.heads, layer.d_out, layer.d_out // 2
    outputs = []
    for h in range(heads):
        w = layer.proj.weight[h * d_out:(h + 1) * d_out].T                       # Eq. 9: d_in x d_out
        wh = x[0] @ w
        rel_tensor = layer.relation[h][adj[0].long()]                            # (L, L, d_r)
        maps = []
        for s in range(2 if layer.differential else 1):
            part = wh[:, s * half:(s + 1) * half]                                # pos, then neg half
            e = (part @ layer.att_left[h, s])[:, None] + (part @ layer.att_right[h, s])[None, :]
            e = e + rel_tensor @ layer.relation_score[h, s]                      # Eq. 12: own projection
            e = F.leaky_relu(e, 0.2).masked_fill(adj[0] == 0, float("-inf"))
            maps.append(torch.softmax(e, -1))
        alpha = maps[0] - layer.lam()[h] * maps[1] if layer.differential else maps[0]   # Eq. 15
        agg = alpha @ wh                                                         # Eq. 16-17: d_out wide
        normed = F.layer_norm(agg, (d_out,), layer.norm_weight[h], layer.norm_bias[h])
        scale = (1 - layer.lambda_init) if layer.differential else 1.0
        outputs.append(F.gelu(normed * scale))
    return torch.cat(outputs, -1)                                                # Eq. 18


@pytest.mark.parametrize("differential", [True, False])
def test_layer_matches_a_per_head_per_edge_reference(differential):
    torch.manual_seed(0)
    layer = DiffGraphAttention(6, 8, heads=2, depth=1, differential=differential).eval()
    with torch.no_grad():   # make every per-head parameter distinct from the others
        layer.norm_weight.uniform_(0.5, 1.5)
        layer.norm_bias.normal_()
    adj_s, _ = graphs([[0, 1, 0, 0, 1]], [5])
    x = torch.randn(1, 5, 6)
    out = layer(x, adj_s)
    assert out.shape == (1, 5, 2 * 8)       # each head outputs d_out (Eq. 16), heads concatenated
    torch.testing.assert_close(out[0], reference_layer(layer, x, adj_s), atol=1e-5, rtol=1e-5)


def test_positive_and_negative_maps_have_their_own_relation_projection():
    torch.manual_seed(5)
    layer = DiffGraphAttention(6, 8, heads=1).eval()
    adj_s, _ = graphs([[0, 1, 0, 0, 1]], [5])
    x = torch.randn(1, 5, 6)
    base = layer(x, adj_s)
    with torch.no_grad():
        layer.relation_score[:, 1] += 1.0                                       # rel^neg only
    changed_neg = layer(x, adj_s)
    assert not torch.allclose(base, changed_neg)
    torch.testing.assert_close(changed_neg[0], reference_layer(layer, x, adj_s), atol=1e-5, rtol=1e-5)
    assert layer.relation_score.shape == (1, 2, 10)                             # d_r = 10


def test_block_widths_and_structure_follow_the_public_code():
    torch.manual_seed(6)
    block = DiffRGCNBlock(16, heads=2, depth=1, dropout=0.2).eval()
    assert (block.heads.d_in, block.heads.d_out, block.heads.heads) == (16, 16, 2)
    assert (block.output.d_in, block.output.d_out, block.output.heads) == (32, 16, 1)   # H*d -> d
    assert block.dropout.p == 0.2 and block.heads.dropout.p == 0.2 and block.output.dropout.p == 0.2
    adj_s, _ = graphs([[0, 1, 0, 0, 1]], [5])
    x = torch.randn(1, 5, 16)
    hidden = reference_layer(block.heads, x, adj_s)[None]
    out = F.gelu(reference_layer(block.output, hidden, adj_s))
    expected = block.norm(x[0] + block.linear(out))
    torch.testing.assert_close(block(x, adj_s)[0], expected, atol=1e-5, rtol=1e-5)


def test_padding_never_changes_results():
    torch.manual_seed(1)
    block = DiffRGCNBlock(16, heads=2, depth=1, dropout=0.0).eval()
    speakers = [[0, 1, 1, 0, 9, 9, 9]]
    adj_short, _ = graphs([[0, 1, 1, 0]], [4])
    adj_padded, _ = graphs(speakers, [4])
    x = torch.randn(1, 4, 16)
    padded = torch.cat([x, 100 * torch.randn(1, 3, 16)], 1)   # garbage in the padding
    torch.testing.assert_close(block(padded, adj_padded)[:, :4], block(x, adj_short))


def test_block_shapes_gradients_and_determinism():
    torch.manual_seed(2)
    adj_s, adj_c = graphs([[0, 1, 0, 1, 0, 0], [1, 0, 0, 9, 9, 9]], [6, 3])
    x = torch.randn(2, 6, 32, requires_grad=True)
    block = DiffRGCNBlock(32, heads=2, depth=2)
    out = block(block(x, adj_c), adj_s)
    assert out.shape == (2, 6, 32) and torch.isfinite(out).all()
    out[:, :3].sum().backward()
    assert block.heads.lambdas.grad.abs().sum() > 0 and block.heads.relation.grad.abs().sum() > 0
    torch.manual_seed(3)
    a = DiffRGCNBlock(32, heads=2).eval()(x.detach(), adj_s)
    torch.manual_seed(3)
    b = DiffRGCNBlock(32, heads=2).eval()(x.detach(), adj_s)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="d_out=15 must be even"):
        DiffRGCNBlock(15, heads=4)


def test_sum_per_type_is_a_sequential_sum_on_cpu_and_one_hot_agrees():
    from model.diffrgcn import one_hot_sum, sum_per_type

    gen = torch.Generator().manual_seed(5)
    for edges, width, kinds in [(1, 1, 2), (37, 3, 6), (5000, 16, 6)]:
        types = torch.randint(0, kinds, (edges,), generator=gen)
        values = torch.randn(edges, width, generator=gen) * 1e3
        oracle = torch.zeros(kinds, width)
        for e in range(edges):                  # edge order, one row at a time
            oracle[types[e]] += values[e]
        assert torch.equal(sum_per_type(types, values, kinds), oracle)   # bitwise
        torch.testing.assert_close(one_hot_sum(types, values, kinds), oracle, rtol=1e-5, atol=1e-2)
    half = torch.randn(9, 2, dtype=torch.float16, generator=gen)
    assert one_hot_sum(torch.zeros(9, dtype=torch.long), half, 3).dtype == torch.float32


def test_relation_lookup_gradient_is_exact_and_deterministic():
    from model.diffrgcn import RelationLookup

    torch.manual_seed(4)
    types = torch.randint(0, 6, (2, 7, 7))
    table = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(RelationLookup.apply(table, types), table[types])
    assert torch.autograd.gradcheck(lambda t: RelationLookup.apply(t, types), (table,))

    def block_grads():
        torch.manual_seed(0)
        block = DiffRGCNBlock(32, heads=2)
        x = torch.randn(8, 60, 32)     # big enough for indexing's parallel backward to differ
        speakers, lengths = torch.randint(0, 2, (8, 60)), torch.tensor([60, 55, 40, 33, 30, 25, 12, 3])
        adj_s, _ = relational_subgraphs(speakers, lengths, window=10)
        block(x, adj_s).pow(2).sum().backward()
        return [p.grad.clone() for p in block.parameters()]

    first, second = block_grads(), block_grads()
    assert all(torch.equal(a, b) for a, b in zip(first, second))   # bitwise: seeded runs stay equal
