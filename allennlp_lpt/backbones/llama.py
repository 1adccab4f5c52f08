"""
Llama-family decoders (Llama, Mistral, Qwen2): rotary positions at every layer, grouped-query
attention, RMSNorm, `model.layers` and a final `model.norm`.

Prompt positions: the real tokens keep the positions they had below the prompt layer and the
prompt sits at `-n .. -1`, right before them (see `BackboneFamily`). Rotary attention depends
only on position differences, so this is a sequence that begins with the prompt.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from allennlp_lpt.core.attention import attend_heads, merge_heads, split_heads
from allennlp_lpt.core.family import (
    BackboneFamily,
    check_children,
    low_memory_loading,
    quiet_hf_loading,
    register_family,
    swap_module,
)
from allennlp_lpt.core.masks import Layout, attention_bias, visibility_bias


class RotaryTables(torch.nn.Module):
    """
    What the layers of a Llama-family model need besides the states: the cos / sin tables of
    rotary embeddings for given positions, from the inverse frequencies of the model's own
    rotary module (so rope scaling that fixes the frequencies, e.g. Llama 3's, carries over),
    computed in float32 as HuggingFace does, and the sliding attention window, if any.

    # Parameters

    inv_freq : `torch.Tensor`, shape `(head_size // 2,)`
    scaling : `float`
        Multiplies both tables (HF's `attention_scaling`; 1 for the default rope).
    sliding_window : `int`, optional
        Mistral's: a position sees only the `sliding_window` latest positions, itself included.
    """

    def __init__(
        self, inv_freq: torch.Tensor, scaling: float = 1.0, sliding_window: Optional[int] = None
    ) -> None:
        super().__init__()
        self.register_buffer("inv_freq", inv_freq.detach().float().clone(), persistent=False)
        self.scaling = scaling
        self.sliding_window = sliding_window

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
        """`(seq_len,)` or per-row `(batch_size, seq_len)` positions -> cos and sin, each
        `(1 or batch_size, seq_len, head_size)` in `dtype`."""
        with torch.autocast(device_type=positions.device.type, enabled=False):
            freqs = positions.float()[..., None] * self.inv_freq.to(positions.device)
            angles = torch.cat([freqs, freqs], dim=-1)
            if angles.dim() == 2:
                angles = angles[None]
            cos, sin = angles.cos() * self.scaling, angles.sin() * self.scaling
        return cos.to(dtype), sin.to(dtype)


class LeanRotaryAttention(torch.nn.Module):
    """
    The self-attention of a Llama-family layer over its `q_proj`, `k_proj`, `v_proj`, `o_proj`
    (shared, not copied): rotary queries and keys, key/value heads repeated for grouped-query
    attention, the core's `attend_heads` kernel (SDPA).

    # Parameters

    hf : `torch.nn.Module`
        HF's `LlamaAttention` / `MistralAttention` / `Qwen2Attention` (any implementation).
    """

    def __init__(self, hf: torch.nn.Module) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = hf.q_proj, hf.k_proj, hf.v_proj, hf.o_proj
        # transformers 5's attention modules keep the head counts in their config only.
        self.num_heads = int(hf.config.num_attention_heads)
        self.num_key_value_heads = int(hf.config.num_key_value_heads)
        self.attention_dropout = float(hf.attention_dropout)

    def forward(
        self,
        hidden_states: torch.Tensor,
        bias: Optional[torch.Tensor],
        cos: torch.Tensor,
        sin: torch.Tensor,
    ) -> torch.Tensor:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        bias : `torch.Tensor`, optional, shape `(batch_size, 1, seq_len, seq_len)`
            The complete causal, padding and sliding-window bias (or a `Layout`'s); None:
            causal attention.
        cos, sin : `torch.Tensor`, shape `(1 or batch_size, seq_len, head_size)`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
        """
        query, key, value = self.project(hidden_states)
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        groups = self.num_heads // self.num_key_value_heads
        context = attend_heads(
            query, repeat_kv(key, groups), repeat_kv(value, groups), bias,
            dropout_p=self.attention_dropout, training=self.training, is_causal=bias is None,
        )
        return self.o_proj(merge_heads(context))

    def project(self, hidden_states: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Queries, keys and values before the rotation: `(batch_size, seq_len, hidden_size)` ->
        `(batch_size, heads, seq_len, head_size)`, keys and values with the key/value heads.
        """
        query = split_heads(self.q_proj(hidden_states), self.num_heads)
        key = split_heads(self.k_proj(hidden_states), self.num_key_value_heads)
        value = split_heads(self.v_proj(hidden_states), self.num_key_value_heads)
        return query, key, value


class TokenEmbeddings(torch.nn.Module):
    """`embed_tokens` alone: Llama-family models add no position embedding at the input."""

    def __init__(self, embed_tokens: torch.nn.Embedding) -> None:
        super().__init__()
        self.embed_tokens = embed_tokens

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        # AllenNLP's indexer passes all-zero type ids; these models have no token types, and
        # positions enter through the rotary tables of every layer.
        return self.embed_tokens(input_ids)


@register_family
class LlamaFamily(BackboneFamily):
    name = "llama"
    model_types = ("llama", "mistral", "qwen2")
    is_causal = True
    attention_projections = ("q_proj", "v_proj")
    # What every layer's attention holds with weights (`check_model`).
    attention_modules: Tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    # The lean attention takes (states, bias, cos, sin), not the arguments of HF's layers.
    lean_attention_fits_hf_layers = False
    # The rope types whose frequencies are fixed, which `RotaryTables` reproduces from the
    # model's own rotary module.
    rope_types = ("default", "linear", "llama3", "yarn")

    @classmethod
    def unsupported(cls, config: PretrainedConfig) -> Optional[str]:
        # transformers 5 writes `rope_parameters` into every config (`{"rope_type": "default",
        # "rope_theta": ...}` where the checkpoint has no scaling).
        rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
        if rope:
            kind = str(rope.get("rope_type", rope.get("type", "default")))
            if kind not in cls.rope_types:
                return (f"rope scaling of type {kind!r} (frequencies that change with the sequence "
                        f"length or are not fixed; supported: {', '.join(cls.rope_types)})")
        if getattr(config, "use_sliding_window", False):
            # Qwen2's window applies to the layers from `max_window_layers` on only.
            return "use_sliding_window=True (a sliding window on some layers only)"
        if config.model_type == "llama" and getattr(config, "sliding_window", None):
            # A key Llama's config does not have: transformers would keep and ignore it.
            return f"sliding_window={config.sliding_window} (Llama layers attend to every position)"
        return None

    @classmethod
    def check_model(cls, model: PreTrainedModel, model_name: str) -> None:
        """`model.embed_tokens`, `layers`, `norm`; each layer the two norms, the attention's four
        projections and the MLP, nothing else with weights."""
        where = dict(model_type=model.config.model_type, model_name=model_name)
        check_children(model.model, required=("embed_tokens", "layers", "norm"),
                       where="the base model", **where)
        for index, layer in enumerate(model.model.layers):
            check_children(
                layer, required=("self_attn", "mlp", "input_layernorm", "post_attention_layernorm"),
                where=f"layer {index}", **where,
            )
            check_children(layer.self_attn, required=cls.attention_modules,
                           where=f"layer {index}'s attention", **where)

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        # These models have no hidden dropout: a generator's dropout must be set explicitly.
        return 0.0

    @classmethod
    def load_model(
        cls, path: str, *, config: PretrainedConfig, dtype: torch.dtype
    ) -> Tuple[PreTrainedModel, List[str]]:
        with quiet_hf_loading():
            model, info = AutoModelForCausalLM.from_pretrained(
                path, config=config, torch_dtype=dtype, output_loading_info=True,
                **low_memory_loading(),
            )
        return model, [key for key in info["missing_keys"] if key.startswith("lm_head.")]

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        return TokenEmbeddings(model.model.embed_tokens)

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return model.model.layers

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.model.norm

    @classmethod
    def lm_head(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.lm_head

    @classmethod
    def position_module(cls, model: PreTrainedModel) -> Optional[torch.nn.Module]:
        rotary = model.model.rotary_emb
        # Mistral's sliding window, which transformers applies with every attention kernel.
        window = model.config.sliding_window if model.config.model_type == "mistral" else None
        return RotaryTables(
            rotary.inv_freq, float(getattr(rotary, "attention_scaling", 1.0)), sliding_window=window
        )

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        for layer in layers:
            swap_module(layer, "self_attn", LeanRotaryAttention(layer.self_attn))

    @classmethod
    def layer_inputs(
        cls,
        position_module: Optional[torch.nn.Module],
        states: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        layout: Optional[Layout] = None,
    ) -> Dict[str, Any]:
        assert position_module is not None
        window = position_module.sliding_window
        if layout is not None:
            cos, sin = position_module(layout.positions, states.dtype)
            bias = visibility_bias(layout.visible, states.dtype, positions=layout.positions,
                                   sliding_window=window)
            return {"bias": bias, "cos": cos, "sin": sin}
        cos, sin = position_module(positions, states.dtype)
        # Right padding makes the causal mask alone exact (see BackboneFamily.layer_inputs);
        # only a sliding window shorter than the sequence needs a bias.
        bias = None
        if window is not None and window < states.size(1):
            bias = attention_bias(mask, states.dtype, causal=True, sliding_window=window)
        return {"bias": bias, "cos": cos, "sin": sin}

    @classmethod
    def run_layer(
        cls, layer: torch.nn.Module, states: torch.Tensor, inputs: Dict[str, Any]
    ) -> torch.Tensor:
        # The decoder layer's residual structure, called with the lean attention's arguments
        # (the HF layers of these three models differ in how they pass positions, not in this).
        states = states + layer.self_attn(layer.input_layernorm(states), **inputs)
        return states + layer.mlp(layer.post_attention_layernorm(states))
