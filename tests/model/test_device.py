"""The one precision switch (the top-level ``precision``): what each choice computes where."""
import pytest
import torch

from config.vocabulary import PRECISIONS
from extractors import get_extractor
from model.device import DeviceError, autocast, compute_identity, grad_scaler, optimizer_step, pick_device


@pytest.mark.parametrize("precision", PRECISIONS)
def test_the_cpu_computes_in_fp32_whatever_is_asked(precision):
    cpu = torch.device("cpu")
    with autocast(cpu, precision):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert not grad_scaler(cpu, precision).is_enabled()
    assert compute_identity(cpu, precision) == {"device": "cpu", "precision": "fp32"}


def test_cuda_names_the_precision_in_effect_and_scales_fp16_losses_only():
    cuda = torch.device("cuda")
    assert [compute_identity(cuda, p)["precision"] for p in PRECISIONS] == list(PRECISIONS)
    if torch.cuda.is_available():   # without CUDA GradScaler disables itself whatever is asked
        assert [grad_scaler(cuda, p).is_enabled() for p in PRECISIONS] == [False, True, False]


def test_an_extractor_takes_the_switch_not_a_param():
    with pytest.raises(ValueError, match="the precision is the top-level `precision` param"):
        get_extractor("audio", "librosa", {"precision": "fp32"}, device="cpu")
    with pytest.raises(ValueError, match="precision='fp8': use one of fp32, fp16, bf16"):
        get_extractor("audio", "librosa", {}, precision="fp8", device="cpu")
    assert get_extractor("audio", "librosa", {}, precision="bf16", device="cpu").precision == "bf16"


def _scaled_backward(scaler, model, overflow: bool) -> None:
    scaler.scale(model(torch.ones(2, 3)).sum()).backward()
    if overflow:                      # what an fp16 gradient overflow looks like to the scaler
        model.weight.grad[0, 0] = float("inf")


def test_a_skipped_fp16_step_moves_neither_the_weights_nor_the_schedule():
    # GradScaler on the CPU (enabled): the same skip logic that runs for fp16 on CUDA.
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    before = model.weight.detach().clone()
    _scaled_backward(scaler, model, overflow=True)
    assert optimizer_step(scaler, optimizer, scheduler) is False
    assert torch.equal(model.weight, before) and scheduler.last_epoch == 0
    assert scaler.get_scale() == 512.0          # backed off, as GradScaler does
    optimizer.zero_grad()
    _scaled_backward(scaler, model, overflow=False)
    assert optimizer_step(scaler, optimizer, scheduler) is True
    assert not torch.equal(model.weight, before) and scheduler.last_epoch == 1
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)   # the schedule's first step


def test_a_disabled_scaler_always_steps():
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = grad_scaler(torch.device("cpu"), "fp16")
    _scaled_backward(scaler, model, overflow=False)
    assert optimizer_step(scaler, optimizer) is True


def test_a_device_the_machine_lacks_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match=r"device='cuda:3': this machine has 1 CUDA device\(s\), cuda:0 .. cuda:0"):
        pick_device("cuda:3")
    with pytest.raises(DeviceError, match="not a torch device"):
        pick_device("cuda:x")
