"""The one precision switch (the top-level ``precision``): what each choice computes where."""
import pytest
import torch

from config.vocabulary import PRECISIONS
from extractors import get_extractor
from model.device import autocast, compute_identity, grad_scaler


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
        get_extractor("audio", "librosa", {"precision": "fp32"})
    with pytest.raises(ValueError, match="precision='fp8': use one of fp32, fp16, bf16"):
        get_extractor("audio", "librosa", {}, precision="fp8")
    assert get_extractor("audio", "librosa", {}, precision="bf16").precision == "bf16"
