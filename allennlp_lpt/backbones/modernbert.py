"""
ModernBERT encoders: bidirectional, pre-norm layers (`attn_norm`, `attn`, `mlp_norm`, `mlp`; the
first layer's `attn_norm` is an identity), a final `final_norm`, no token types and no position
embedding at the input. Attention alternates by layer (`config.layer_types`): global layers
attend to every position; local (`sliding_attention`) layers only to positions at most
`local_attention // 2` away. Both rotate queries and keys, each kind with its own rotary base
(`rope_parameters[kind]["rope_theta"]`). Queries, keys and values come from one fused `Wqkv`
projection. The masked-LM head is `head` (dense, activation, norm) then `decoder`.

Prompt placement. As in every family, the real tokens keep the positions `0 .. seq_len - 1` they
have below the prompt layer and the `n` prompt vectors sit at `-n .. -1`, right before `[CLS]`.
Rotary attention and the local window both depend only on position differences, so a prompt
layer computes exactly what HF's own forward computes over the sequence `[prompt; tokens]`: on
global layers every token and prompt vector attends to all of them; on local layers prompt
vector `j` (at `j - n`) and token `i` see each other only when `i - j + n <= local_attention //
2`, so with windows shorter than the input, tokens far from the start read the prompt through
the global layers (and through what the tokens near the start carry), not directly.
"""
from typing import Any, Dict, List, Optional, Tuple

import torch
from transformers import AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
# ModernBERT's own rotation: in float32 whatever the states' dtype, as HF rotates.
from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

from allennlp_lpt.backbones.llama import LlamaFamily, RotaryTables, TokenEmbeddings
from allennlp_lpt.core.attention import attend_heads, merge_heads
from allennlp_lpt.core.family import (
    BackboneFamily,
    check_children,
    low_memory_loading,
    quiet_hf_loading,
    register_family,
    swap_module,
)
from allennlp_lpt.core.masks import Layout

LAYER_KINDS = ("full_attention", "sliding_attention")


class AlternatingRotaryTables(torch.nn.Module):
    """
    What ModernBERT's layers need besides the states, per layer kind: the rotary tables of the
    kind's own frequencies (from HF's rotary module, in float32 as HF computes them) and, for
    local layers, the half window.

    # Parameters

    tables : `Dict[str, RotaryTables]`
        By layer kind (`"full_attention"`, `"sliding_attention"`).
    half_window : `int`
        `local_attention // 2`: a local layer's position sees positions at most this far away.
    """

    def __init__(self, tables: Dict[str, RotaryTables], half_window: int) -> None:
        super().__init__()
        self.tables = torch.nn.ModuleDict(tables)
        self.half_window = half_window


class LeanFusedAttention(torch.nn.Module):
    """
    ModernBERT's attention over its fused `Wqkv` and its `Wo` (shared, not copied): rotary
    queries and keys, the core's `attend_heads` kernel (SDPA), `out_drop` after `Wo`.

    # Parameters

    hf : `torch.nn.Module`
        HF's `ModernBertAttention` (any implementation).
    """

    def __init__(self, hf: torch.nn.Module) -> None:
        super().__init__()
        self.Wqkv, self.Wo, self.out_drop = hf.Wqkv, hf.Wo, hf.out_drop
        self.head_dim = int(hf.head_dim)
        self.attention_dropout = float(hf.attention_dropout)

    def forward(
        self, hidden_states: torch.Tensor, bias: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> torch.Tensor:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        bias : `torch.Tensor`, shape `(batch_size, 1, 1 or seq_len, seq_len)`
            Padding (and, on local layers, the window), additive.
        cos, sin : `torch.Tensor`, shape `(1, seq_len, head_size)`

        # Returns

        `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`.
        """
        batch, length, _ = hidden_states.shape
        # (batch, T, 3, heads, head_size) -> three (batch, heads, T, head_size)
        qkv = self.Wqkv(hidden_states).view(batch, length, 3, -1, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        query, key = apply_rotary_pos_emb(query, key, cos, sin)
        context = attend_heads(query, key, value, bias, dropout_p=self.attention_dropout,
                               training=self.training)
        return self.out_drop(self.Wo(merge_heads(context)))


@register_family
class ModernBertFamily(BackboneFamily):
    name = "modernbert"
    model_types = ("modernbert",)
    is_causal = False
    # The fused query/key/value projection: LoRA adapts all three at once.
    attention_projections = ("Wqkv",)
    # The lean attention takes (states, bias, cos, sin), not the arguments of HF's layers.
    lean_attention_fits_hf_layers = False
    # ModernBERT's per-layer attention kinds are what this family computes.
    computed_options = ("layer_types",)
    # HF's ModernBERT keeps no key/value cache: there is nowhere for a prefix to enter.
    takes_past_key_values = False

    @classmethod
    def unsupported(cls, config: PretrainedConfig) -> Optional[str]:
        kinds = list(config.layer_types)
        unknown = sorted(set(kinds) - set(LAYER_KINDS))
        if unknown or len(kinds) != config.num_hidden_layers:
            return (f"layer_types={kinds!r} (this family runs one of {', '.join(LAYER_KINDS)} "
                    f"per layer, {config.num_hidden_layers} layers)")
        for kind in sorted(set(kinds)):
            rope = (config.rope_parameters or {}).get(kind) or {}
            rope_type = str(rope.get("rope_type", "default"))
            if rope_type not in LlamaFamily.rope_types:
                return (f"rope scaling of type {rope_type!r} on its {kind} layers (frequencies "
                        f"that change with the sequence length or are not fixed; supported: "
                        f"{', '.join(LlamaFamily.rope_types)})")
        return None

    @classmethod
    def check_model(cls, model: PreTrainedModel, model_name: str) -> None:
        """`model.embeddings` (token embeddings, norm), `layers`, `final_norm`; each layer the two
        norms, the fused attention and the MLP, nothing else with weights."""
        where = dict(model_type=model.config.model_type, model_name=model_name)
        check_children(model.model, required=("embeddings", "layers", "final_norm"),
                       where="the base model", **where)
        check_children(model.model.embeddings, required=("tok_embeddings", "norm"),
                       where="the embeddings", **where)
        for index, layer in enumerate(model.model.layers):
            check_children(layer, required=("attn_norm", "attn", "mlp_norm", "mlp"),
                           where=f"layer {index}", **where)
            check_children(layer.attn, required=("Wqkv", "Wo"), where=f"layer {index}'s attention",
                           **where)

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        # No dropout on the residual stream (ModernBERT's are on the embeddings, the MLP's inner
        # activations and attention): a generator's dropout must be set explicitly.
        return 0.0

    @classmethod
    def load_model(
        cls, path: str, *, config: PretrainedConfig, dtype: torch.dtype
    ) -> Tuple[PreTrainedModel, List[str]]:
        """The masked-LM model; a checkpoint without the head reports its weights as missing."""
        with quiet_hf_loading():
            model, info = AutoModelForMaskedLM.from_pretrained(
                path, config=config, torch_dtype=dtype, output_loading_info=True,
                **low_memory_loading(),
            )
        head = [key for key in info["missing_keys"] if key.startswith(("head.", "decoder."))]
        return model, head

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        # HF's embeddings module (token embeddings, norm, dropout) called with the ids alone.
        return TokenEmbeddings(model.model.embeddings)

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return model.model.layers

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.model.final_norm

    @classmethod
    def lm_head(cls, model: PreTrainedModel) -> torch.nn.Module:
        return torch.nn.Sequential(model.head, model.decoder)

    @classmethod
    def position_module(cls, model: PreTrainedModel) -> Optional[torch.nn.Module]:
        rotary = model.model.rotary_emb
        tables = {
            kind: RotaryTables(getattr(rotary, f"{kind}_inv_freq"),
                               float(getattr(rotary, f"{kind}_attention_scaling")))
            for kind in sorted(set(model.config.layer_types))
        }
        return AlternatingRotaryTables(tables, int(model.config.sliding_window))

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        for layer in layers:
            swap_module(layer, "attn", LeanFusedAttention(layer.attn))

    @classmethod
    def layer_inputs(
        cls,
        position_module: Optional[torch.nn.Module],
        states: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        layout: Optional[Layout] = None,
    ) -> Dict[str, Any]:
        """By layer kind, the `bias`, `cos` and `sin` its attention takes (see the module
        docstring on where the prompt sits)."""
        assert isinstance(position_module, AlternatingRotaryTables) and layout is None
        padding = mask.bool()[:, None, None, :]
        inputs: Dict[str, Dict[str, torch.Tensor]] = {}
        for kind, tables in position_module.tables.items():
            allowed = padding
            if kind == "sliding_attention":
                distance = (positions[:, None] - positions[None, :]).abs()
                allowed = padding & (distance <= position_module.half_window)[None, None]
            # One fill of the dtype's minimum, never a sum of two (which would reach -inf and
            # turn a padding row that sees no key into NaN).
            bias = torch.full(allowed.shape, torch.finfo(states.dtype).min, dtype=states.dtype,
                              device=states.device).masked_fill_(allowed, 0.0)
            cos, sin = tables(positions, states.dtype)
            inputs[kind] = {"bias": bias, "cos": cos, "sin": sin}
        return inputs

    @classmethod
    def run_layer(
        cls, layer: torch.nn.Module, states: torch.Tensor, inputs: Dict[str, Any]
    ) -> torch.Tensor:
        # ModernBertEncoderLayer's pre-norm residual structure, its attention with its kind's inputs.
        states = states + layer.attn(layer.attn_norm(states), **inputs[layer.attention_type])
        return states + layer.mlp(layer.mlp_norm(states))
