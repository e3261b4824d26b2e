"""Training AR-IIGCN on the project's one engine (:func:`model.engine.fit`): the AMB-DSGDN
trainer's batches, dev selection, curves, resume and evaluation (:class:`model.training.AMBDSGDNTrainee`),
with its own optimiser steps.

Per batch (our design: the abstract names the parts, not the schedule; AGF-IB sums its GAN terms
with the classification loss under one optimiser, we give the discriminators their own, as GANs
usually are trained, so that their step never moves the rest of the model):

1. **discriminator step** (with a GAN): :math:`L_D` on the generated sequences, detached
   (:mod:`model.tri_gan`); Adam over the discriminators' weights only;
2. **model step**: the class-weighted cross-entropy of the fused prediction (Eq. of the
   abstract's "joint loss": classification + contrastive), plus ``weight_gan`` × :math:`L_G`
   (the generators fool the other modalities' discriminators; the discriminators do not move),
   ``weight_iccl`` × the mean ICCL over modalities and ``weight_imcl`` × IMCL on the graph nodes
   of labelled utterances present in every modality; plus the per-modality probes'
   cross-entropy (their inputs are detached: they read the model, never train it). Adam over
   everything but the discriminators.

A run with one modality has no GAN and no IMCL (the curve then has no ``disc_loss``, ``gen_loss``
or ``imcl`` column: nothing was computed).
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import torch
from torch.nn import functional as F

from model.ar_iigcn import ARIIGCN
from model.contrastive import iccl_loss, imcl_loss
from model.device import autocast, optimizer_step
from model.distributed import average_gradients
from model.training import AMBDSGDNTrainee


class ARIIGCNTrainee(AMBDSGDNTrainee):
    """AR-IIGCN's optimiser steps on the AMB-DSGDN trainer's data, evaluation and state."""

    architecture = ARIIGCN

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        gan = self.model.gan
        self.disc_optimizer = None if gan is None else torch.optim.Adam(
            gan.discriminators.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    def optimized_parameters(self) -> list[torch.nn.Parameter]:
        gan = self.model.gan
        skip = {id(p) for p in gan.discriminators.parameters()} if gan is not None else set()
        return [p for p in self.model.parameters() if id(p) not in skip]

    def dropout_active(self, epoch: int) -> bool:
        return False                     # AMB-DSGDN's modality dropout is not part of this model

    def train_epoch(self, epoch: int) -> Iterator[dict]:
        model, config, device, c = self.model, self.config, self.device, self.model.config
        self.started = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        steps = 0
        for b, scored in self.train_batches():
            with autocast(device, config.precision):
                encoded = model.encode(b.features, b.speakers, b.lengths, b.present)
            parts = {}
            if model.gan is not None and self.disc_optimizer is not None:
                self.disc_optimizer.zero_grad(set_to_none=True)
                with autocast(device, config.precision):
                    d_loss = model.gan.discriminator_loss(encoded["generated"], b.lengths, b.real)
                d_loss.backward()
                average_gradients(model.gan.discriminators.parameters(), self.world)
                self.disc_optimizer.step()
                parts["disc_loss"] = d_loss.item()
            self.optimizer.zero_grad(set_to_none=True)
            with autocast(device, config.precision):
                out = model.classify(encoded["nodes"])
            labels = b.labels[scored]
            loss = F.cross_entropy(out["fused_logits"][scored].float(), labels, weight=self.weights)
            parts["class_loss"] = loss.item()
            probe = sum(F.cross_entropy(out[m][scored & encoded["available"][m]].float(),
                                        b.labels[scored & encoded["available"][m]])
                        for m in model.modalities if (scored & encoded["available"][m]).any())
            loss = loss + probe
            if model.gan is not None and c.weight_gan:
                for p in model.gan.discriminators.parameters():
                    p.requires_grad_(False)
                g_loss = model.gan.generator_loss(encoded["generated"], b.lengths, b.real)
                for p in model.gan.discriminators.parameters():
                    p.requires_grad_(True)
                loss = loss + c.weight_gan * g_loss
                parts["gen_loss"] = g_loss.item()
            everywhere = scored.clone()
            for m in model.modalities:
                everywhere &= encoded["available"][m]
            if c.iccl and c.weight_iccl:
                iccl = torch.stack([
                    iccl_loss(encoded["nodes"][m][scored & encoded["available"][m]].float(),
                              b.labels[scored & encoded["available"][m]], c.beta, c.contrastive, c.tau)
                    for m in model.modalities]).mean()
                loss = loss + c.weight_iccl * iccl
                parts["iccl"] = iccl.item()
            if c.imcl and c.weight_imcl and len(model.modalities) > 1:
                imcl = imcl_loss([encoded["nodes"][m][everywhere].float() for m in model.modalities],
                                 b.labels[everywhere], c.beta, c.contrastive, c.tau)
                loss = loss + c.weight_imcl * imcl
                parts["imcl"] = imcl.item()
            self.scaler.scale(loss).backward()
            average_gradients(self.optimized_parameters(), self.world)
            optimizer_step(self.scaler, self.optimizer)
            parts["train_loss"] = loss.item()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            steps += 1
        self.q = {}
        yield {key: value / max(steps, 1) for key, value in sums.items()} or {"train_loss": float("nan")}

    def idle_step(self) -> None:
        """With data parallelism, a rank without dialogues in this batch still joins both
        exchanges (discriminators, then the model) with zero gradients."""
        if self.world.size > 1 and self.disc_optimizer is not None:
            self.disc_optimizer.zero_grad(set_to_none=True)
            average_gradients(self.model.gan.discriminators.parameters(), self.world)
            self.disc_optimizer.step()
        super().idle_step()

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.disc_optimizer is not None:
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if self.disc_optimizer is not None:
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])

