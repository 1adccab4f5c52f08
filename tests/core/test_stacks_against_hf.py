"""The core's layer ranges, prompt insertion and masks against HuggingFace's own forward pass."""
import pytest
import torch
from transformers import AutoModel

from allennlp_lpt.core import LowerStack, UpperStack
from hf_reference import hf_with_prompt

FAMILIES = ["roberta", "bert", "gpt2"]


def _batch(model_dir: str, family: str):
    """Two inputs of different lengths, right-padded, as AllenNLP's indexer gives them."""
    torch.manual_seed(1)
    vocab = AutoModel.from_pretrained(model_dir).config.vocab_size
    ids = torch.randint(5, vocab, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    pad = 1 if family == "roberta" else 0
    ids[~mask] = pad
    return ids, mask


def _hf(model_dir: str):
    model = AutoModel.from_pretrained(model_dir)
    model.eval()
    return model


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prompt_layer", [0, 2, 3])
def test_lower_stack_equals_hf_hidden_states(tiny_models, family, prompt_layer):
    ids, mask = _batch(tiny_models[family], family)
    lower = LowerStack(tiny_models[family], prompt_layer).eval()
    ours = lower(ids, mask)
    expected = _hf(tiny_models[family])(
        input_ids=ids, attention_mask=mask.long(), output_hidden_states=True
    ).hidden_states[prompt_layer]
    assert ours.grad_fn is None
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prompt_layer", [1, 2])
def test_upper_stack_equals_hf_layers_over_prompt_and_states(tiny_models, family, prompt_layer):
    ids, mask = _batch(tiny_models[family], family)
    lower = LowerStack(tiny_models[family], prompt_layer).eval()
    upper = UpperStack(tiny_models[family], prompt_layer).eval()
    prompt = torch.randn(2, 3, lower.hidden_size)
    ours = upper(lower(ids, mask), mask, prompt)
    causal = family == "gpt2"
    expected = hf_with_prompt(_hf(tiny_models[family]), ids, mask, prompt, prompt_layer, causal)
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-4)


def test_lower_stack_loads_only_the_layers_below_the_prompt(tiny_models):
    lower = LowerStack(tiny_models["roberta"], 2)
    upper = UpperStack(tiny_models["roberta"], 2)
    assert len(lower.layers) == 2 and len(upper.layers) == 2
    assert not any(p.requires_grad for p in lower.parameters())
    assert not any(p.requires_grad for p in upper.parameters())
