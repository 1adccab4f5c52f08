"""The core's layer ranges, prompt insertion and masks against HuggingFace's own forward pass,
for every model type the package accepts."""
import pytest
import torch
from transformers import AutoConfig, AutoModel

from allennlp_lpt.core import LowerStack, UpperStack, supported_model_types
from hf_reference import ROTARY, hf_with_prompt

MODEL_TYPES = ["roberta", "xlm-roberta", "camembert", "bert", "gpt2", "llama", "mistral", "qwen2"]


def test_every_accepted_model_type_is_tested_here():
    assert sorted(MODEL_TYPES) == supported_model_types()


def _batch(model_dir: str):
    """Two inputs of different lengths, right-padded, as AllenNLP's indexer gives them."""
    torch.manual_seed(1)
    config = AutoConfig.from_pretrained(model_dir)
    ids = torch.randint(5, config.vocab_size, (2, 9))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    ids[~mask] = config.pad_token_id or 0
    return ids, mask


def _hf(model_dir: str):
    """HF's base model with its own eager attention: independent of the lean kernels."""
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
    model.eval()
    return model


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("prompt_layer", [0, 2, 3])
def test_lower_stack_equals_hf_hidden_states(tiny_models, model_type, prompt_layer):
    ids, mask = _batch(tiny_models[model_type])
    lower = LowerStack(tiny_models[model_type], prompt_layer).eval()
    ours = lower(ids, mask)
    expected = _hf(tiny_models[model_type])(
        input_ids=ids, attention_mask=mask.long(), output_hidden_states=True
    ).hidden_states[prompt_layer]
    assert ours.grad_fn is None
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@pytest.mark.parametrize("prompt_layer", [1, 2])
def test_upper_stack_equals_hf_layers_over_prompt_and_states(tiny_models, model_type, prompt_layer):
    ids, mask = _batch(tiny_models[model_type])
    lower = LowerStack(tiny_models[model_type], prompt_layer).eval()
    upper = UpperStack(tiny_models[model_type], prompt_layer).eval()
    prompt = torch.randn(2, 3, lower.hidden_size)
    ours = upper(lower(ids, mask), mask, prompt)
    causal = model_type == "gpt2" or model_type in ROTARY
    expected = hf_with_prompt(_hf(tiny_models[model_type]), ids, mask, prompt, prompt_layer, causal)
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-4)


def test_mistral_sliding_window_is_applied(tiny_models):
    """The tiny Mistral's window (6) is shorter than the batch (9): without the window the
    states of the last tokens would differ from HF's."""
    assert AutoConfig.from_pretrained(tiny_models["mistral"]).sliding_window < 9
    ids, mask = _batch(tiny_models["mistral"])
    ours = LowerStack(tiny_models["mistral"], 3).eval()(ids, mask)
    no_window = AutoModel.from_pretrained(tiny_models["mistral"], attn_implementation="eager",
                                          sliding_window=None).eval()
    unwindowed = no_window(input_ids=ids, attention_mask=mask.long(),
                           output_hidden_states=True).hidden_states[3]
    assert not torch.allclose(ours[0, -1], unwindowed[0, -1], atol=1e-4)


def test_lower_stack_runs_only_the_layers_below_the_prompt(tiny_models):
    lower = LowerStack(tiny_models["roberta"], 2)
    upper = UpperStack(tiny_models["roberta"], 2)
    assert len(lower.layers) == 2 and len(upper.layers) == 2
    assert not any(p.requires_grad for p in lower.parameters())
    assert not any(p.requires_grad for p in upper.parameters())
