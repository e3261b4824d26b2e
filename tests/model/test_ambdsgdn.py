import pytest
import torch

from config.model import ModelConfig
from model.ambdsgdn import AMBDSGDN
from model.classifier import total_loss

DIMS = {"text": 12, "audio": 10, "visual": 8}


def config(**kw):
    base = dict(input_dims=DIMS, num_classes=4, d_hidden=16, window=3, graph_heads=2,
                encoder_heads=2, max_speakers=3, dropout=0.0)
    return ModelConfig(**{**base, **kw})


def batch(lengths=(5, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    b, n = len(lengths), max(lengths)
    feats = {m: torch.randn(b, n, d, generator=g) for m, d in DIMS.items()}
    speakers = torch.randint(0, 2, (b, n), generator=g)
    return feats, speakers, torch.tensor(lengths)


@pytest.mark.parametrize("graph", ["diff", "gat", "none"])
def test_shapes_and_padding_invariance(graph):
    torch.manual_seed(0)
    model = AMBDSGDN(config(graph=graph)).eval()
    feats, speakers, lengths = batch()
    out = model(feats, speakers, lengths)
    assert set(out) == {"text", "audio", "visual", "fused"} and out["fused"].shape == (2, 5, 4)
    assert torch.allclose(out["fused"].exp().sum(-1), torch.ones(2, 5))
    # The short dialogue alone gives the same outputs as inside a padded batch.
    alone = model({m: x[1:, :3] for m, x in feats.items()}, speakers[1:, :3], lengths[1:])
    torch.testing.assert_close(out["fused"][1:, :3], alone["fused"], atol=1e-5, rtol=1e-5)


def test_ablations_differ_and_modality_subsets():
    feats, speakers, lengths = batch()
    outs = {}
    for graph in ("diff", "gat", "none"):
        torch.manual_seed(0)
        outs[graph] = AMBDSGDN(config(graph=graph)).eval()(feats, speakers, lengths)["fused"]
    assert not torch.allclose(outs["diff"], outs["gat"]) and not torch.allclose(outs["diff"], outs["none"])
    text_audio = AMBDSGDN(config(input_dims={"text": 12, "audio": 10}))
    assert set(text_audio(feats, speakers, lengths)) == {"text", "audio", "fused"}
    with pytest.raises(ValueError, match="model.graph: unknown graph variant 'gcn'"):
        AMBDSGDN(config(graph="gcn"))
    with pytest.raises(ValueError, match="modalities: empty"):
        config(input_dims={})     # unknown names are refused by the params schema (pipeline)
    with pytest.raises(ValueError, match="model.window=0"):
        config(window=0)


def test_deterministic_on_cpu_and_learns_a_context_task():
    """Label = speaker's previous cue: only solvable through the dialogue graph."""
    def data(seed):
        g = torch.Generator().manual_seed(seed)
        cues = torch.randint(0, 4, (32, 8), generator=g)
        speakers = torch.arange(8).repeat(32, 1) % 2
        labels = torch.roll(cues, 2, dims=1)            # same speaker's previous turn
        labels[:, :2] = cues[:, :2]
        feats = {"text": torch.nn.functional.one_hot(cues, 4).float()}
        return feats, speakers, torch.full((32,), 8), labels

    def train(graph):
        torch.manual_seed(0)
        model = AMBDSGDN(ModelConfig(input_dims={"text": 4}, num_classes=4, d_hidden=16, window=2,
                                     graph=graph, dropout=0.0))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        feats, speakers, lengths, labels = data(0)
        mask = torch.ones(32, 8, dtype=torch.bool)
        for _ in range(150):
            opt.zero_grad()
            loss, _ = total_loss({"text": model(feats, speakers, lengths)["text"]}, labels, mask)
            loss.backward()
            opt.step()
        feats, speakers, lengths, labels = data(1)
        model.eval()
        pred = model(feats, speakers, lengths)["fused"].argmax(-1)
        return (pred[:, 2:] == labels[:, 2:]).float().mean().item(), loss.item()

    acc_diff, loss_a = train("diff")
    assert train("diff")[1] == loss_a                    # same seed, same result on CPU
    acc_none, _ = train("none")
    assert acc_diff > 0.9 and acc_none < 0.5, (acc_diff, acc_none)


def test_block_details_follow_the_public_code():
    model = AMBDSGDN(config(dropout=0.5, graph_dropout=0.2, depth=1))
    for m in DIMS:
        assert model.inter[m].heads.lambda_init == model.intra[m].heads.lambda_init   # depth 1 both
        assert model.inter[m].dropout.p == 0.2 and model.intra[m].output.dropout.p == 0.2
        assert model.heads[m].dropout.p == 0.5
    assert set(model.gates) == {"audio", "visual"}             # gate: contextual modalities only
    # The gate acts after the graph blocks: its input is the intra-speaker block's output.
    seen = {}
    model.eval()
    model.intra["audio"].register_forward_hook(lambda mod, args, out: seen.update(graph=out))
    model.gates["audio"].register_forward_hook(lambda mod, args, out: seen.update(gate_in=args[0]))
    model(*batch())
    assert torch.equal(seen["graph"], seen["gate_in"])
    with pytest.raises(ValueError, match="more than model.max_speakers=3"):
        feats, speakers, lengths = batch()
        model(feats, speakers + 2, lengths)


def test_a_dropped_modality_contributes_exactly_its_head_bias():
    from model.classifier import fuse
    from model.modality_dropout import mask_modalities

    torch.manual_seed(3)
    model = AMBDSGDN(config()).eval()
    feats, speakers, lengths = batch()
    hidden = model.encode(feats, speakers, lengths)
    out = mask_modalities([hidden[m] for m in model.modalities], torch.tensor([0.0, 1.0, 0.0]), p_exe=1.0)
    assert out.applied and len(out.kept) == 2
    logits = model.classify(dict(zip(model.modalities, out.features)))
    bias = model.heads["audio"].linear.bias
    torch.testing.assert_close(logits["audio"], bias.expand_as(logits["audio"]))   # no signal at all
    scale = 1 / (1 - 1 / 3)                                                          # theta = mean(q)
    expected = model.classify({m: hidden[m] * scale for m in ("text", "visual")})
    torch.testing.assert_close(fuse(logits), fuse({**expected, "audio": bias.expand_as(logits["audio"])}))


@pytest.mark.parametrize("graph", ["diff", "gat", "none"])
def test_an_absent_modality_of_an_utterance_reaches_no_output(graph):
    torch.manual_seed(4)
    model = AMBDSGDN(config(graph=graph)).eval()
    feats, speakers, lengths = batch()
    present = {m: torch.ones(2, 5, dtype=torch.bool) for m in DIMS}
    present["audio"][0, 2] = False                       # one utterance without audio
    present["visual"][1] = False                         # a whole dialogue without video
    out = model(feats, speakers, lengths, present)
    changed = {m: x.clone() for m, x in feats.items()}
    changed["audio"][0, 2] = 1e3 * torch.randn(DIMS["audio"])
    changed["visual"][1] = torch.randn(5, DIMS["visual"])
    again = model(changed, speakers, lengths, present)
    for key in out:
        torch.testing.assert_close(again[key], out[key])
        assert torch.isfinite(out[key]).all()
    # The absent head leaves the fused logits of that utterance.
    expected = torch.log_softmax(out["text"][0, 2] + out["visual"][0, 2], -1)
    torch.testing.assert_close(out["fused"][0, 2], expected)
    # Without `present`, the same change does reach the outputs (the test can fail).
    assert not torch.allclose(model(feats, speakers, lengths)["fused"], model(changed, speakers, lengths)["fused"])
    # All present == no mask given.
    full = {m: torch.ones(2, 5, dtype=torch.bool) for m in DIMS}
    real = torch.arange(5)[None] < lengths[:, None]
    torch.testing.assert_close(model(feats, speakers, lengths, full)["fused"][real],
                               model(feats, speakers, lengths)["fused"][real])
