"""HuggingFace's own forward pass with a prompt inserted by hooks: the independent reference."""
import torch
from transformers.modeling_attn_mask_utils import _prepare_4d_causal_attention_mask_for_sdpa

ROTARY = ("llama", "mistral", "qwen2")


def base_layers(model):
    """The transformer layers of a HuggingFace base model (`AutoModel`)."""
    if model.config.model_type == "gpt2":
        return model.h
    if model.config.model_type in ROTARY:
        return model.layers
    return model.encoder.layer


def hf_with_prompt(model, ids, mask, prompt, prompt_layer, causal):
    """
    HF's forward, with the prompt prepended before layer `prompt_layer + 1` by hooks and every
    upper layer given HF's own mask for the extended sequence. Rotary models get HF's positions
    of a sequence that truly begins with the prompt (prompt at 0 .. n-1, tokens from n), computed
    by HF's own rotary code; returns the states of the real tokens.
    """
    model_type = model.config.model_type
    layers = base_layers(model)
    n = prompt.size(1)
    extended = torch.cat([torch.ones(ids.size(0), n, dtype=torch.bool), mask], 1)
    dummy = torch.zeros(ids.size(0), extended.size(1), prompt.size(-1))
    if model_type in ROTARY:
        # The model's own mask code (Mistral's applies its sliding window there).
        options = {"use_cache": False} if model_type == "mistral" else {}
        hf_mask = model._update_causal_mask(
            attention_mask=extended.long(), input_tensor=dummy,
            cache_position=torch.arange(extended.size(1)), past_key_values=None,
            output_attentions=True, **options,
        )
    elif causal:
        hf_mask = _prepare_4d_causal_attention_mask_for_sdpa(
            extended.long(), extended.shape, dummy, 0
        )
    else:
        hf_mask = model.get_extended_attention_mask(extended.long(), extended.shape)
    positions = torch.arange(extended.size(1))[None]
    handles = []

    def insert(module, args, kwargs):
        return (torch.cat([prompt, args[0]], dim=1),) + args[1:], kwargs

    def remask(module, args, kwargs):
        if "attention_mask" in kwargs:
            kwargs["attention_mask"] = hf_mask
        else:
            args = (args[0], hf_mask) + args[2:]
        if model_type in ROTARY:
            kwargs["position_ids"] = positions
            if model_type == "llama":
                kwargs["position_embeddings"] = model.rotary_emb(dummy, positions)
        return args, kwargs

    if causal and model_type == "gpt2":
        # GPT-2 reshapes to the input length after ln_f: drop the prompt positions there.
        handles.append(model.ln_f.register_forward_hook(lambda m, a, out: out[:, n:]))
    if prompt_layer < len(layers):
        handles.append(layers[prompt_layer].register_forward_pre_hook(insert, with_kwargs=True))
    for layer in layers[prompt_layer:]:
        handles.append(layer.register_forward_pre_hook(remask, with_kwargs=True))
    try:
        kwargs = {"use_cache": False} if model_type in ROTARY or causal else {}
        output = model(input_ids=ids, attention_mask=mask.long(), **kwargs).last_hidden_state
        return output if model_type == "gpt2" else output[:, n:]
    finally:
        for handle in handles:
            handle.remove()
