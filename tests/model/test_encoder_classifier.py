import pytest
import torch
from torch.nn import functional as F

from model.classifier import fuse, scored_nll, total_loss
from model.encoder import ModalityEncoder, sinusoidal_positions


def test_sinusoidal_positions():
    table = sinusoidal_positions(5, 8)
    assert table.shape == (5, 8)
    assert table[0, 0::2].abs().sum() == 0 and torch.all(table[0, 1::2] == 1)
    assert table[3, 0] == pytest.approx(torch.sin(torch.tensor(3.0)).item())


def test_contextual_encoder_ignores_padding_and_has_the_public_widths():
    torch.manual_seed(0)
    enc = ModalityEncoder(6, 16, contextual=True, heads=4, dropout=0.0).eval()
    assert enc.feed_forward[0].out_features == 16            # d_ff = d_hidden (public code)
    x, spk = torch.randn(1, 4, 6), torch.randn(1, 4, 16)
    alone = enc(x, torch.ones(1, 4, dtype=torch.bool), spk)
    padded = enc(torch.cat([x, 50 * torch.randn(1, 3, 6)], 1), torch.tensor([[True] * 4 + [False] * 3]),
                 torch.cat([spk, torch.randn(1, 3, 16)], 1))
    torch.testing.assert_close(padded[:, :4], alone, atol=1e-5, rtol=1e-5)
    assert padded[:, 4:].abs().sum() == 0
    with pytest.raises(ValueError, match="needs the speaker embeddings"):
        enc(x, torch.ones(1, 4, dtype=torch.bool))
    text = ModalityEncoder(6, 16, contextual=False)
    torch.testing.assert_close(text(x, torch.ones(1, 4, dtype=torch.bool)), text.project(x))


def test_encoder_input_dropout_after_position_and_speaker():
    torch.manual_seed(1)
    enc = ModalityEncoder(6, 16, contextual=True, heads=4, dropout=0.5)
    assert enc.input_dropout.p == 0.5
    x, spk, valid = torch.randn(2, 5, 6), torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    seen = {}
    enc.attention.register_forward_pre_hook(lambda mod, args, kw: seen.update(h=args[0]), with_kwargs=True)
    enc(x, valid, spk)
    assert (seen["h"] == 0).float().mean() > 0.3             # half of the summed input is dropped


def test_loss_is_eq_33_and_ignores_padding():
    torch.manual_seed(1)
    logits = {"text": torch.randn(2, 3, 4), "audio": torch.randn(2, 3, 4)}
    labels = torch.tensor([[0, 1, 2], [3, 0, 0]])
    mask = torch.tensor([[True, True, True], [True, False, False]])
    loss, parts = total_loss(logits, labels, mask)
    fusion = F.nll_loss(F.log_softmax(logits["text"] + logits["audio"], -1)[mask], labels[mask])
    uni = {m: F.cross_entropy(z[mask], labels[mask]) for m, z in logits.items()}
    expected = fusion + sum(u * u / 10 for u in uni.values())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert parts["fusion"] == pytest.approx(fusion.item(), rel=1e-6)
    # alpha_m = L_m / 10 is not detached (reference code): d(alpha_m L_m)/dz = 2 alpha_m dL_m/dz
    z = {m: t.clone().requires_grad_() for m, t in logits.items()}
    total_loss(z, labels, mask)[0].backward()
    zr = {m: t.clone().requires_grad_() for m, t in logits.items()}
    ref_fusion = F.nll_loss(F.log_softmax(zr["text"] + zr["audio"], -1)[mask], labels[mask])
    ref_uni = {m: F.cross_entropy(t[mask], labels[mask]) for m, t in zr.items()}
    (ref_fusion + sum(u * u.detach() / 5 for u in ref_uni.values())).backward()
    for m in z:
        torch.testing.assert_close(z[m].grad, zr[m].grad)
    # present: an utterance without a modality leaves that modality's term and the fused sum
    present = {"text": torch.ones(2, 3, dtype=torch.bool), "audio": torch.tensor([[True, False, True], [True] * 3])}
    loss_p, parts_p = total_loss(logits, labels, mask, present=present)
    fused = F.log_softmax(logits["text"] + logits["audio"] * present["audio"][..., None], -1)
    assert torch.allclose(fuse(logits, present)[0, 1], F.log_softmax(logits["text"][0, 1], -1))
    uni_audio = F.cross_entropy(logits["audio"][mask & present["audio"]], labels[mask & present["audio"]])
    assert parts_p["audio"] == pytest.approx(uni_audio.item(), rel=1e-6)
    assert parts_p["fusion"] == pytest.approx(F.nll_loss(fused[mask], labels[mask]).item(), rel=1e-6)
    moved = {m: z.clone() for m, z in logits.items()}
    moved["audio"][0, 1] = 50.0
    assert total_loss(moved, labels, mask, present=present)[0].item() == pytest.approx(loss_p.item())
    changed = {m: z.clone() for m, z in logits.items()}
    changed["text"][1, 2] = 100.0                      # a padded position
    assert total_loss(changed, labels, mask)[0].item() == pytest.approx(loss.item())
    weights = torch.tensor([1.0, 2.0, 1.0, 0.5])
    weighted = scored_nll(fuse(logits), labels, mask, weights)
    assert weighted.item() == pytest.approx(
        F.nll_loss(fuse(logits)[mask], labels[mask], weight=weights).item())


def test_fusion_weights_scale_each_modality_in_eq_29():
    torch.manual_seed(0)
    logits = {"text": torch.randn(2, 3, 4), "audio": torch.randn(2, 3, 4), "visual": torch.randn(2, 3, 4)}
    present = {m: torch.ones(2, 3, dtype=torch.bool) for m in logits}
    present["audio"][0, 1] = False
    weights = {"text": 0.8, "audio": 0.1, "visual": 0.1}
    expected = torch.zeros(2, 3, 4)                      # the oracle: a weighted sum, absent terms left out
    for m, z in logits.items():
        expected += weights[m] * z * present[m][..., None]
    assert torch.allclose(fuse(logits, present, weights), F.log_softmax(expected, -1), atol=1e-6)
    assert torch.equal(fuse(logits, present, {}), fuse(logits, present))       # no weights: Eq. 29's sum
    assert torch.equal(fuse(logits, present, {m: 1.0 for m in logits}), fuse(logits, present))
    labels, scored = torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool)
    weighted, _ = total_loss(logits, labels, scored, present=present, fusion_weights=weights)
    plain, _ = total_loss(logits, labels, scored, present=present)
    assert not torch.isclose(weighted, plain)            # the fused term of Eq. 33 uses the weights


def test_fusion_weights_name_modalities_of_the_run_and_are_positive():
    from config.model import ModelConfig

    dims = {"text": 4, "audio": 3}
    assert ModelConfig(dims, 2, fusion_weights={"text": 0.8}).fusion_weight("audio") == 1.0
    with pytest.raises(ValueError, match="model.fusion_weights.visual: not a modality of this run"):
        ModelConfig(dims, 2, fusion_weights={"visual": 0.1})
    for bad in (0, -0.5, float("inf"), True, "0.8"):
        with pytest.raises(ValueError, match="model.fusion_weights.text"):
            ModelConfig(dims, 2, fusion_weights={"text": bad})
