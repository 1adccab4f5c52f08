"""BERT-like bidirectional encoders (BERT, MiniLM): embeddings, `encoder.layer`, no final norm."""
from typing import Any, List, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
import transformers
from transformers import AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
from transformers.models.bert.modeling_bert import BertSelfAttention

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


class EncoderFamily(BackboneFamily):
    """Shared by the bidirectional encoders whose base model has `embeddings` and `encoder.layer`."""

    is_causal = False
    attention_projections = ("query", "value")
    # The masked-LM model's attribute holding the base model, and the one holding its head.
    base_prefix: str = ""
    lm_head_prefix: str = ""

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        return float(config.hidden_dropout_prob)

    @classmethod
    def unsupported(cls, config: PretrainedConfig) -> Optional[str]:
        # Run as a bidirectional encoder: a decoder's causal mask or cross-attention would be
        # silently dropped.
        if getattr(config, "is_decoder", False):
            return "is_decoder=True (a causal decoder; this family runs bidirectional encoders)"
        if getattr(config, "add_cross_attention", False):
            return "add_cross_attention=True (cross-attention layers)"
        kind = getattr(config, "position_embedding_type", None)
        if kind not in (None, "absolute"):
            # transformers 5 computes absolute positions whatever this says (it dropped relative
            # position embeddings and keeps the key unread): such a checkpoint would run as
            # another model.
            return (f"position_embedding_type={kind!r} (relative position embeddings, which "
                    f"transformers {transformers.__version__} ignores)")
        return None

    @classmethod
    def check_model(cls, model: PreTrainedModel, model_name: str) -> None:
        """The base model's embeddings and `encoder.layer`, each layer BERT's attention,
        intermediate and output, the masked-LM head (where the checkpoint has one) apart."""
        model_type = model.config.model_type
        where = dict(model_type=model_type, model_name=model_name)
        base = cls._base(model)
        check_children(base, required=("embeddings", "encoder"), allowed=("pooler",),
                       where="the base model", **where)
        check_children(cls.embeddings(model), required=("word_embeddings", "LayerNorm"),
                       allowed=("position_embeddings", "token_type_embeddings"),
                       where="the embeddings", **where)
        for index, layer in enumerate(cls.layers(model)):
            check_children(layer, required=("attention", "intermediate", "output"),
                           where=f"layer {index}", **where)
            check_children(layer.attention, required=("self", "output"),
                           where=f"layer {index}'s attention", **where)
            attention = layer.attention.self
            if not _is_bert_like_self_attention(attention):
                raise ConfigurationError(
                    f"model_name={model_name!r} ({model_type!r}): layer {index} holds a "
                    f"{type(attention).__name__}, not the BERT-style self-attention (query, key, "
                    f"value, dropout) this family runs."
                )
            check_children(attention, required=("query", "key", "value"),
                           where=f"layer {index}'s self-attention", **where)

    @classmethod
    def load_model(
        cls, path: str, *, config: PretrainedConfig, dtype: torch.dtype
    ) -> Tuple[PreTrainedModel, List[str]]:
        """The masked-LM model; a checkpoint without the head (e.g. MiniLM) reports its head's
        weights as missing."""
        with quiet_hf_loading():
            model, info = AutoModelForMaskedLM.from_pretrained(
                path, config=config, torch_dtype=dtype, output_loading_info=True,
                **low_memory_loading(),
            )
        prefix = cls.lm_head_prefix + "."
        return model, [key for key in info["missing_keys"] if key.startswith(prefix)]

    @classmethod
    def _base(cls, model: PreTrainedModel) -> PreTrainedModel:
        return getattr(model, cls.base_prefix)

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        return cls._base(model).embeddings

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return cls._base(model).encoder.layer

    @classmethod
    def lm_head(cls, model: PreTrainedModel) -> torch.nn.Module:
        return getattr(model, cls.lm_head_prefix)

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        """
        Gives every layer `LeanSelfAttention` (below) over the same weights: HF's eager
        kernel stores a `batch x heads x T x T` probability tensor per layer; HF's SDPA kernel
        takes SDPA's slow math path with dropout on the CPU. A decoder's attention (refused by
        `unsupported`) keeps HF's module.
        """
        for layer in layers:
            attention = layer.attention.self
            if not _is_bert_like_self_attention(attention):
                raise ConfigurationError(
                    f"{cls.name} layers hold a {type(attention).__name__}, not the BERT-style "
                    f"self-attention (query, key, value, dropout) this family runs. Add its "
                    f"model type to a family of its own in allennlp_lpt/backbones/."
                )
            if attention.is_decoder:
                continue  # HF's own module, as documented above
            lean = LeanSelfAttention(attention, num_heads=config.num_attention_heads)
            swap_module(layer.attention, "self", lean)


@register_family
class BertFamily(EncoderFamily):
    name = "bert"
    model_types = ("bert",)
    base_prefix = "bert"
    lm_head_prefix = "cls"


def _is_bert_like_self_attention(module: torch.nn.Module) -> bool:
    """
    BERT's self-attention (eager or SDPA) or one of its copies: RoBERTa, XLM-RoBERTa and
    CamemBERT define their own classes with the same code (transformers' "Copied from"), which
    are not subclasses, so the check is on what the lean module reads.
    """
    if isinstance(module, BertSelfAttention):
        return True
    return all(
        isinstance(getattr(module, name, None), torch.nn.Linear) for name in ("query", "key", "value")
    ) and isinstance(getattr(module, "dropout", None), torch.nn.Dropout) and hasattr(module, "is_decoder")


class LeanSelfAttention(torch.nn.Module):
    """
    What HuggingFace's eager `BertSelfAttention` / `RobertaSelfAttention` computes, over the same
    query/key/value weights (shared, not copied), through the core's `attend_heads` kernel.

    # Parameters

    eager : `torch.nn.Module`
        A `BertSelfAttention`-like module: `query`, `key`, `value` linears and the attention
        probabilities' `dropout`, kept as a module so that whatever sets dropout modules' `p`
        reaches this one too.
    num_heads : `int`
    """

    def __init__(self, eager: torch.nn.Module, *, num_heads: int) -> None:
        super().__init__()
        self.query, self.key, self.value = eager.query, eager.key, eager.value
        self.dropout = eager.dropout
        self.num_heads = num_heads
        self.layer_idx = eager.layer_idx  # where a key/value cache keeps this layer's entries

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        cache: Optional[Any] = None,
        *,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        output_attentions: bool = False,
        **kwargs: Any,
    ) -> Tuple[torch.Tensor, None]:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        attention_mask : `torch.Tensor`, optional, shape `(batch_size, 1, 1 or seq_len, key_len)`
            Additive bias, as `core.masks.attention_bias` makes it, or the mask HF's own model
            code builds (boolean for SDPA; `core.masks.as_additive_bias`).
        cache : `transformers.Cache`, optional
            Keys and values to put in front of the sequence's own (what PEFT's prefix tuning
            passes; the core never does): HF's `cache.update` returns them with this call's
            appended, each `(batch_size, num_heads, prefix_len + seq_len, head_size)`.

        The other arguments are those HuggingFace's layers pass; the core never sets them.

        # Returns

        `(context, None)`, context of shape `(batch_size, seq_len, hidden_size)` and no
        attention weights, what HF's layers take from their attention.
        """
        if encoder_hidden_states is not None or output_attentions:
            raise ValueError(
                "LeanSelfAttention is an encoder self-attention: cross-attention and "
                "output_attentions are not supported"
            )
        query, key, value = (
            split_heads(projection(hidden_states), self.num_heads)
            for projection in (self.query, self.key, self.value)
        )
        if cache is not None:
            # Prefix tuning's trainable keys and values, in front of the sequence's own.
            key, value = cache.update(key, value, self.layer_idx)
        bias = as_additive_bias(attention_mask, query.dtype)
        context = merge_heads(attend_heads(
            query, key, value, bias, dropout_p=self.dropout.p, training=self.training
        ))
        return context, None
