"""The core's layer ranges, prompt insertion and masks against HuggingFace's own forward pass."""
import pytest
import torch
from transformers import AutoModel
from transformers.modeling_attn_mask_utils import _prepare_4d_causal_attention_mask_for_sdpa

from allennlp_lpt.core import LowerStack, UpperStack

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


def _hf_with_prompt(model, ids, mask, prompt, prompt_layer, causal):
    """HF's forward, with the prompt prepended before layer `prompt_layer + 1` by hooks and
    every upper layer given HF's own mask for the extended sequence."""
    layers = model.h if causal else model.encoder.layer
    extended = torch.cat([torch.ones(ids.size(0), prompt.size(1), dtype=torch.bool), mask], 1)
    dummy = torch.zeros(ids.size(0), extended.size(1), prompt.size(-1))
    if causal:
        hf_mask = _prepare_4d_causal_attention_mask_for_sdpa(
            extended.long(), extended.shape, dummy, 0
        )
    else:
        hf_mask = model.get_extended_attention_mask(extended.long(), extended.shape)
    handles = []

    def insert(module, args, kwargs):
        return (torch.cat([prompt, args[0]], dim=1),) + args[1:], kwargs

    def remask(module, args, kwargs):
        if "attention_mask" in kwargs:
            kwargs["attention_mask"] = hf_mask
        else:
            args = (args[0], hf_mask) + args[2:]
        return args, kwargs

    if causal:
        # GPT-2 reshapes to the input length after ln_f: drop the prompt positions there.
        handles.append(model.ln_f.register_forward_hook(lambda m, a, out: out[:, prompt.size(1) :]))
    if prompt_layer < len(layers):
        handles.append(layers[prompt_layer].register_forward_pre_hook(insert, with_kwargs=True))
    for layer in layers[prompt_layer:]:
        handles.append(layer.register_forward_pre_hook(remask, with_kwargs=True))
    try:
        output = model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return output if causal else output[:, prompt.size(1) :]
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("prompt_layer", [1, 2])
def test_upper_stack_equals_hf_layers_over_prompt_and_states(tiny_models, family, prompt_layer):
    ids, mask = _batch(tiny_models[family], family)
    lower = LowerStack(tiny_models[family], prompt_layer).eval()
    upper = UpperStack(tiny_models[family], prompt_layer).eval()
    prompt = torch.randn(2, 3, lower.hidden_size)
    ours = upper(lower(ids, mask), mask, prompt)
    causal = family == "gpt2"
    expected = _hf_with_prompt(_hf(tiny_models[family]), ids, mask, prompt, prompt_layer, causal)
    real = mask[..., None]
    torch.testing.assert_close(ours * real, expected * real, atol=1e-5, rtol=1e-4)


def test_lower_stack_loads_only_the_layers_below_the_prompt(tiny_models):
    lower = LowerStack(tiny_models["roberta"], 2)
    upper = UpperStack(tiny_models["roberta"], 2)
    assert len(lower.layers) == 2 and len(upper.layers) == 2
    assert not any(p.requires_grad for p in lower.parameters())
    assert not any(p.requires_grad for p in upper.parameters())
