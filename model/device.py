"""Device choice and mixed precision, shared by training and the neural extractors.

It lives in :mod:`model`, below ``extractors`` and ``pipeline``, so that both can use it."""
from __future__ import annotations

import contextlib

import torch


class DeviceError(ValueError):
    """The top-level ``device`` param names a device that is not here; the message says which."""


def pick_device(name: str) -> torch.device:
    """``auto`` = CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device={name!r}: no CUDA device here (use auto or cpu)")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device={name!r}: not a torch device (auto, cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device={name!r}: this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s), cuda:0 .. cuda:{torch.cuda.device_count() - 1}")
    return device


def autocast(device: torch.device, precision: str):
    """fp16/bf16 autocast on CUDA; a no-op on CPU or with fp32."""
    if device.type != "cuda" or precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """Loss scaling for fp16 training on CUDA (its gradients would underflow); disabled (a
    pass-through) for bf16, fp32 or the CPU."""
    return torch.amp.GradScaler("cuda", enabled=device.type == "cuda" and precision == "fp16")


def optimizer_step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> bool:
    """``scaler.step`` and ``scaler.update``, then ``scheduler.step`` only if the optimizer stepped;
    returns whether it did. With fp16 loss scaling, a step whose gradients overflowed is skipped
    (and the scale halved): the schedule counts updates actually made, as transformers' Trainer
    and Accelerate do, so skipped steps use up neither warm-up nor decay, and a resumed run (the
    scaler is saved with the optimizer) follows the same schedule as an uninterrupted one."""
    before = scaler.get_scale() if scaler.is_enabled() else None
    scaler.step(optimizer)
    scaler.update()
    stepped = before is None or scaler.get_scale() >= before   # a skipped step backs the scale off
    if stepped and scheduler is not None:
        scheduler.step()
    return stepped


def compute_identity(device: torch.device, precision: str) -> dict[str, str]:
    """What a neural extractor's numbers depend on besides its weights and input: the device type
    (CPU and CUDA kernels round differently; CUDA convolutions use TF32 by default) and the
    precision actually computed in (``autocast`` is a no-op on the CPU: fp32 whatever is asked)."""
    effective = precision if device.type == "cuda" else "fp32"
    return {"device": device.type, "precision": effective}
