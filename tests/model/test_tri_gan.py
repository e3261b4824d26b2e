"""The tri-modal GAN on a toy problem: with the generators frozen the discriminators' loss falls,
with the discriminators frozen the generators' loss falls; padding never reaches a loss."""
import torch

from model.tri_gan import TriModalGAN

MODALITIES = ["text", "audio", "visual"]


def toy():
    torch.manual_seed(0)
    gan = TriModalGAN(MODALITIES, d_in=6, d_gen=8, d_disc=4)
    lengths = torch.tensor([5, 3, 4])
    mask = torch.arange(5)[None] < lengths[:, None]
    # Three modalities that differ plainly (shifted means): easy for a discriminator at first.
    h = {m: torch.randn(3, 5, 6) + 2.0 * i for i, m in enumerate(MODALITIES)}
    return gan, h, lengths, mask


def steps(loss_of, params, n=60):
    optimizer = torch.optim.Adam(params, lr=1e-2)
    losses = []
    for _ in range(n):
        optimizer.zero_grad()
        loss = loss_of()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_the_discriminators_learn_with_the_generators_frozen():
    gan, h, lengths, mask = toy()
    g = {m: x.detach() for m, x in gan.generate(h, lengths).items()}
    before = {n: p.clone() for n, p in gan.generators.named_parameters()}
    losses = steps(lambda: gan.discriminator_loss(g, lengths, mask), gan.discriminators.parameters())
    assert losses[-1] < 0.5 * losses[0]
    assert all(torch.equal(p, before[n]) for n, p in gan.generators.named_parameters())


def test_the_generators_learn_with_the_discriminators_frozen():
    gan, h, lengths, mask = toy()
    g = {m: x.detach() for m, x in gan.generate(h, lengths).items()}
    steps(lambda: gan.discriminator_loss(g, lengths, mask), gan.discriminators.parameters())
    for p in gan.discriminators.parameters():
        p.requires_grad_(False)
    losses = steps(lambda: gan.generator_loss(gan.generate(h, lengths), lengths, mask),
                   gan.generators.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_padding_reaches_no_loss_and_one_modality_has_no_gan():
    gan, h, lengths, mask = toy()
    g = gan.generate(h, lengths)
    loss = gan.discriminator_loss(g, lengths, mask)
    noisy = {m: x.clone() for m, x in g.items()}
    for x in noisy.values():
        x[~mask] = 1e3                                   # garbage in the padding only
    assert torch.allclose(gan.discriminator_loss(noisy, lengths, mask), loss)
    assert TriModalGAN(["text"], 6, 8, 4).active is False and gan.active
