import pytest
import torch
from torch import nn

from model.dropout import Dropout, SelfAttention, dropout


def test_dropout_keeps_with_probability_1_minus_p_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(200_000)
    y = dropout(x, 0.3, training=True)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.7, abs=0.005)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)          # expectation preserved


def test_dropout_gradient_is_the_mask_and_eval_is_identity():
    torch.manual_seed(1)
    x = torch.randn(4, 5, requires_grad=True)
    y = dropout(x, 0.5, training=True)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y.detach() != 0).float() * 2.0)
    layer = Dropout(0.5).eval()
    assert layer(x) is x
    assert dropout(x, 0.0, training=True) is x
    assert (dropout(x, 1.0, training=True) == 0).all()
    with pytest.raises(ValueError, match="1.5"):
        Dropout(1.5)


def test_dropout_is_reproducible_from_the_torch_seed():
    x = torch.ones(1000)
    torch.manual_seed(7)
    a = dropout(x, 0.5, True)
    torch.manual_seed(7)
    torch.testing.assert_close(dropout(x, 0.5, True), a)


def test_self_attention_matches_torch_multihead_attention():
    torch.manual_seed(2)
    ours = SelfAttention(16, heads=4).eval()
    ref = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.qkv.weight)
        ref.in_proj_bias.copy_(ours.qkv.bias + torch.randn(48))
        ours.qkv.bias.copy_(ref.in_proj_bias)
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(2, 6, 16)
    padding = torch.tensor([[False] * 6, [False] * 4 + [True] * 2])
    expected, _ = ref(x, x, x, key_padding_mask=padding, need_weights=False)
    got = ours(x, key_padding_mask=padding)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    changed = x.clone()
    changed[1, 4:] = 99.0                                  # padded keys/values do not matter
    torch.testing.assert_close(ours(changed, padding)[1, :4], got[1, :4], rtol=1e-5, atol=1e-5)


def test_attention_dropout_acts_in_training_only():
    torch.manual_seed(3)
    layer = SelfAttention(8, heads=2, dropout=0.5)
    x, padding = torch.randn(1, 5, 8), torch.zeros(1, 5, dtype=torch.bool)
    layer.eval()
    torch.testing.assert_close(layer(x, padding), layer(x, padding))
    layer.train()
    assert not torch.allclose(layer(x, padding), layer.eval()(x, padding))
