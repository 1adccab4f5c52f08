"""HuggingFace's own forward pass with a prompt inserted by a hook: the independent reference."""
import torch

ROTARY = ("llama", "mistral", "qwen2", "qwen3")


def base_layers(model):
    """The transformer layers of a HuggingFace base model (`AutoModel`)."""
    if model.config.model_type == "gpt2":
        return model.h
    if model.config.model_type in ROTARY + ("modernbert",):
        return model.layers
    return model.encoder.layer


def hf_with_prompt(model, ids, mask, prompt, prompt_layer):
    """
    HF's forward over a sequence that truly begins with the prompt: the model runs on the
    extended length (prompt positions, then the tokens) with the extended mask, so that its own
    code builds the attention mask (causal, sliding window, per layer type) and the positions
    (rotary models and ModernBERT: prompt at 0 .. n-1, tokens from n, so ModernBERT's local window
    counts from there too); a hook makes the input of layer
    `prompt_layer + 1` the prompt followed by the tokens' own states after layer `prompt_layer`
    (from a plain forward pass). Returns the final states of the real tokens,
    `(batch, seq_len, hidden)`.
    """
    layers = base_layers(model)
    if not 0 <= prompt_layer < len(layers):
        raise ValueError(f"prompt_layer {prompt_layer}: the model has layers 0 .. {len(layers) - 1} to insert before")
    n = prompt.size(1)
    extended = torch.cat([torch.ones(ids.size(0), n, dtype=torch.bool), mask], 1)
    options = {"use_cache": False} if model.config.model_type in ROTARY + ("gpt2",) else {}
    with torch.no_grad():
        below = model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True, **options)
    states = torch.cat([prompt, below.hidden_states[prompt_layer]], dim=1)

    def insert(module, args, kwargs):
        if args:
            return (states,) + args[1:], kwargs
        return args, dict(kwargs, hidden_states=states)

    # What the layers below see is replaced at `prompt_layer`: any input of the extended length.
    placeholder = torch.zeros(ids.size(0), extended.size(1), prompt.size(-1))
    handle = layers[prompt_layer].register_forward_pre_hook(insert, with_kwargs=True)
    try:
        output = model(inputs_embeds=placeholder, attention_mask=extended.long(), **options).last_hidden_state
    finally:
        handle.remove()
    return output[:, n:]
