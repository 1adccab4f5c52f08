"""The core's CPU dropout and lean self-attention against PyTorch's and HuggingFace's own."""
import pytest
import torch
from transformers import AutoModel

from allennlp_lpt.core.attention import LeanSelfAttention
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


def _attention_pair(model_dir):
    """HF's eager self-attention of RoBERTa's first layer and ours over the same weights."""
    model = AutoModel.from_pretrained(model_dir)
    eager = model.encoder.layer[0].attention.self
    assert type(eager).__name__ == "RobertaSelfAttention"
    lean = LeanSelfAttention(eager, num_heads=model.config.num_attention_heads,
                             dropout_p=model.config.attention_probs_dropout_prob)
    return eager, lean


def _inputs(hidden):
    torch.manual_seed(0)
    states = torch.randn(2, 7, hidden)
    bias = torch.zeros(2, 1, 1, 7)
    bias[1, ..., 5:] = torch.finfo(torch.float32).min  # the second example is 5 tokens long
    return states, bias


def test_lean_attention_equals_hf_eager_attention(tiny_models):
    eager, lean = _attention_pair(tiny_models["roberta"])
    eager.eval(), lean.eval()
    states, bias = _inputs(eager.query.in_features)
    torch.testing.assert_close(lean(states, bias)[0], eager(states, bias)[0], atol=1e-5, rtol=1e-4)


def test_lean_attention_dropout_is_unbiased_on_the_cpu(tiny_models):
    """Dropout acts on the probabilities after the softmax, scaled by 1 / (1 - p): the mean over
    many training-mode draws is the eval-mode output."""
    eager, lean = _attention_pair(tiny_models["roberta"])
    lean.dropout_p = 0.3
    states, bias = _inputs(eager.query.in_features)
    with torch.no_grad():
        expected = lean.eval()(states, bias)[0]
        lean.train()
        draws = torch.stack([lean(states, bias)[0] for _ in range(4000)])
    assert not torch.allclose(draws[0], expected, atol=1e-3)  # dropout did act
    torch.testing.assert_close(draws.mean(0), expected, atol=0.02, rtol=0.05)


def test_without_dropout_no_probability_matrix_is_kept_for_backward(tiny_models):
    eager, lean = _attention_pair(tiny_models["roberta"])
    lean.train()
    lean.dropout_p = 0.0
    states, bias = _inputs(eager.query.in_features)
    states.requires_grad_(True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t, lambda t: t):
        lean(states, bias)[0].sum().backward()
    heads = lean.num_heads
    assert saved and (2, heads, 7, 7) not in [tuple(shape) for shape in saved]


def test_unsupported_arguments_are_refused(tiny_models):
    eager, lean = _attention_pair(tiny_models["roberta"])
    states, bias = _inputs(eager.query.in_features)
    with pytest.raises(ValueError, match="output_attentions"):
        lean(states, bias, output_attentions=True)
