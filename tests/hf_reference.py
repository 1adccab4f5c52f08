"""HuggingFace's own forward pass with a prompt inserted by hooks: the independent reference."""
import torch
from transformers.modeling_attn_mask_utils import _prepare_4d_causal_attention_mask_for_sdpa


def hf_with_prompt(model, ids, mask, prompt, prompt_layer, causal):
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
