"""GPT-2: a causal decoder with learned positions, `h` layers and a final `ln_f`."""
from typing import Any, List, Optional, Tuple

import torch
from transformers import AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from allennlp_lpt.core.attention import attend_heads, merge_heads, split_heads
from allennlp_lpt.core.masks import as_additive_bias
from allennlp_lpt.core.family import (
    BackboneFamily,
    check_children,
    low_memory_loading,
    quiet_hf_loading,
    register_family,
    swap_module,
)


class GPT2Embeddings(torch.nn.Module):
    """Token plus position embeddings, then dropout, as `GPT2Model.forward` computes them."""

    def __init__(self, wte: torch.nn.Embedding, wpe: torch.nn.Embedding, drop: torch.nn.Dropout):
        super().__init__()
        self.wte = wte
        self.wpe = wpe
        self.drop = drop

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """`position_ids` `(batch_size, seq_len)`: a `Layout`'s; default `0 .. seq_len - 1`."""
        # GPT-2 would embed token_type_ids with its word embeddings; AllenNLP's indexer passes
        # all-zero type ids, which would add the embedding of token 0 everywhere, so they are
        # ignored.
        if position_ids is None:
            return self.drop(self.wte(input_ids) + self.wpe(
                torch.arange(input_ids.size(1), device=input_ids.device))[None])
        return self.drop(self.wte(input_ids) + self.wpe(position_ids))


@register_family
class GPT2Family(BackboneFamily):
    name = "gpt2"
    model_types = ("gpt2",)
    is_causal = True
    attention_projections = ("c_attn",)  # queries, keys and values in one Conv1D

    @classmethod
    def max_positions(cls, config: PretrainedConfig) -> int:
        return int(config.n_positions)

    @classmethod
    def unsupported(cls, config: PretrainedConfig) -> Optional[str]:
        if getattr(config, "add_cross_attention", False):
            return "add_cross_attention=True (cross-attention layers)"
        return None

    @classmethod
    def check_model(cls, model: PreTrainedModel, model_name: str) -> None:
        """Token and position embeddings, blocks of ln_1, attention, ln_2 and MLP, ln_f."""
        where = dict(model_type=model.config.model_type, model_name=model_name)
        check_children(model.transformer, required=("wte", "wpe", "h", "ln_f"),
                       where="the base model", **where)
        for index, block in enumerate(model.transformer.h):
            check_children(block, required=("ln_1", "attn", "ln_2", "mlp"),
                           where=f"block {index}", **where)
            check_children(block.attn, required=("c_attn", "c_proj"),
                           where=f"block {index}'s attention", **where)

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        return float(config.resid_pdrop)

    @classmethod
    def load_model(
        cls, path: str, *, config: PretrainedConfig, dtype: torch.dtype
    ) -> Tuple[PreTrainedModel, List[str]]:
        # GPT-2's LM head is tied to the word embeddings, so it always exists.
        with quiet_hf_loading():
            model = AutoModelForCausalLM.from_pretrained(
                path, config=config, torch_dtype=dtype, **low_memory_loading()
            )
        return model, []

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        base = model.transformer
        return GPT2Embeddings(base.wte, base.wpe, base.drop)

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return model.transformer.h

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        """
        Gives every block `LeanGPT2Attention` (below) over the same weights: HF's SDPA attention
        takes SDPA's slow math path with dropout on the CPU. Variants the lean module does not
        compute (per-layer scaling, upcast reordering, unscaled weights) keep HF's module.
        """
        if config.scale_attn_by_inverse_layer_idx or config.reorder_and_upcast_attn \
                or not config.scale_attn_weights:
            return
        for block in layers:
            if not getattr(block.attn, "is_cross_attention", False):
                swap_module(block, "attn", LeanGPT2Attention(block.attn))

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.transformer.ln_f

    @classmethod
    def lm_head(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.lm_head


class LeanGPT2Attention(torch.nn.Module):
    """
    What HuggingFace's `GPT2Attention` computes for self-attention, over its `c_attn`, `c_proj`
    and residual dropout (shared, not copied), through the core's `attend_heads` kernel. The causal
    mask comes in `attention_mask`, complete (`core.masks.attention_bias(causal=True)`).

    # Parameters

    hf : `torch.nn.Module`
        A `GPT2Attention` (or its SDPA subclass).
    """

    def __init__(self, hf: torch.nn.Module) -> None:
        super().__init__()
        self.c_attn, self.c_proj, self.resid_dropout = hf.c_attn, hf.c_proj, hf.resid_dropout
        self.embed_dim, self.num_heads = hf.embed_dim, hf.num_heads
        # Kept as a module, so that whatever sets dropout modules' `p` reaches this one too;
        # `attend_heads` reads its probability.
        self.attn_dropout = hf.attn_dropout
        self.layer_idx = hf.layer_idx  # where a key/value cache keeps this layer's entries

    def forward(
        self,
        hidden_states: torch.Tensor,
        cache: Optional[Any] = None,
        attention_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        *,
        output_attentions: Optional[bool] = False,
        **kwargs: Any,
    ) -> Tuple[torch.Tensor, None]:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        cache : `transformers.Cache`, optional
            Keys and values in front of the sequence's own (PEFT's prefix tuning; the core never
            passes them): HF's `cache.update` returns them with this call's appended, each
            `(batch_size, num_heads, prefix_len + seq_len, head_size)`.
        attention_mask : `torch.Tensor`, optional, shape `(batch_size, 1, seq_len, key_len)`
            The complete causal and padding bias (or HF's own mask, boolean for SDPA:
            `core.masks.as_additive_bias`); None means the plain causal mask (HF's SDPA path
            passes None for an unpadded batch).

        The other arguments are those HuggingFace's blocks pass; the core never sets them.

        # Returns

        `(output, None)`: output of shape `(batch_size, seq_len, hidden_size)` and no attention
        weights, what `GPT2Block` takes from its attention.
        """
        if encoder_hidden_states is not None or output_attentions:
            raise ValueError(
                "LeanGPT2Attention is the self-attention of late-prompt stacks and of training: "
                "cross-attention and output_attentions are not supported"
            )
        query, key, value = (
            split_heads(states, self.num_heads)
            for states in self.c_attn(hidden_states).split(self.embed_dim, dim=2)
        )
        if cache is not None:  # prefix tuning's keys and values, in front
            key, value = cache.update(key, value, self.layer_idx)
        bias = as_additive_bias(attention_mask, query.dtype)
        context = merge_heads(attend_heads(
            query, key, value, bias, dropout_p=self.attn_dropout.p,
            training=self.training, is_causal=bias is None,
        ))
        return self.resid_dropout(self.c_proj(context)), None
