"""The core's CPU dropout against what PyTorch's dropout guarantees."""
import torch
from transformers import AutoModel

from allennlp_lpt.core.dropout import FastDropout, dropout, use_fast_dropout


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest():
    torch.manual_seed(0)
    inputs = torch.full((1000, 1000), 2.0, requires_grad=True)
    output = dropout(inputs, 0.1, training=True)
    dropped = (output == 0).float().mean().item()
    assert abs(dropped - 0.1) < 0.002  # 1e6 draws: the standard error is 0.0003
    assert torch.allclose(output[output != 0], torch.tensor(2.0 / 0.9))
    output.sum().backward()  # the gradient is the same mask and scale
    torch.testing.assert_close(inputs.grad, (output != 0).float() / 0.9)


def test_dropout_matches_torch_in_distribution_on_bf16_and_is_identity_in_eval():
    torch.manual_seed(0)
    inputs = torch.ones(4000, 500, dtype=torch.bfloat16)
    assert abs((dropout(inputs, 0.25, True) == 0).float().mean().item() - 0.25) < 0.003
    assert dropout(inputs, 0.25, training=False) is inputs
    assert dropout(inputs, 0.0, training=True) is inputs


def test_the_random_stream_follows_torch_manual_seed():
    torch.manual_seed(3)
    first = dropout(torch.ones(100), 0.5, True)
    torch.manual_seed(3)
    assert torch.equal(first, dropout(torch.ones(100), 0.5, True))


def test_use_fast_dropout_replaces_every_plain_dropout_and_keeps_mode(tiny_models):
    model = AutoModel.from_pretrained(tiny_models["roberta"]).eval()
    plain = sum(type(m) is torch.nn.Dropout for m in model.modules())
    assert use_fast_dropout(model) == plain > 0
    fast = [m for m in model.modules() if isinstance(m, FastDropout)]
    assert len(fast) == plain and not any(m.training for m in fast)
    assert not any(type(m) is torch.nn.Dropout for m in model.modules())
