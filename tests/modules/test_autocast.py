"""Mixed precision: the components under autocast (bf16 on the CPU here; CUDA's `use_amp` uses
the same autocast). Parameters and their gradients stay fp32; outputs match fp32 closely."""
import pytest
import torch

from modules.test_late_prompt_components import TEXTS, build_pair, tokenize


@pytest.mark.parametrize("family", ["roberta", "gpt2"])
@pytest.mark.parametrize("generator", ["npg", "mppg"])
def test_bf16_autocast_keeps_fp32_parameters_and_gradients(tiny_models, family, generator):
    torch.manual_seed(0)
    embedder, encoder = build_pair(tiny_models[family], family, generator=generator)
    embedder.eval(), encoder.eval()
    ids, mask = tokenize(tiny_models[family], family, TEXTS)
    reference = encoder(embedder(ids, mask), mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        pooled = encoder(embedder(ids, mask), mask)
    torch.testing.assert_close(pooled.float(), reference, atol=0.1, rtol=0.05)
    (pooled.float() * torch.randn_like(reference)).sum().backward()
    for name, parameter in encoder.generator.named_parameters():
        assert parameter.dtype == torch.float32 and parameter.grad.dtype == torch.float32, name
        assert bool(torch.isfinite(parameter.grad).all()) and bool(parameter.grad.abs().sum() > 0), name
