"""BERT-like bidirectional encoders (BERT, MiniLM): embeddings, `encoder.layer`, no final norm."""
from typing import Any, Optional, Tuple

import torch
from allennlp.common.checks import ConfigurationError
from transformers import AutoModel, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
from transformers.models.bert.modeling_bert import BertSelfAttention

from allennlp_lpt.core.attention import attend
from allennlp_lpt.core.family import (
    BackboneFamily,
    quiet_hf_loading,
    register_family,
    resolve_model_name,
)


class EncoderFamily(BackboneFamily):
    """Shared by the bidirectional encoders whose base model has `embeddings` and `encoder.layer`."""

    is_causal = False
    encoder_type = "late_prompt_roberta"
    # Prefix of the masked-LM head's weights in the checkpoint of `AutoModelForMaskedLM`.
    lm_head_prefix: str = ""

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        return float(config.hidden_dropout_prob)

    @classmethod
    def load_base_model(
        cls, model_name: str, *, num_layers: Optional[int] = None
    ) -> PreTrainedModel:
        overrides = {} if num_layers is None else {"num_hidden_layers": num_layers}
        with quiet_hf_loading():
            return AutoModel.from_pretrained(
                resolve_model_name(model_name), add_pooling_layer=False, **overrides
            )

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.embeddings

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return model.encoder.layer

    @classmethod
    def prepare_layers(cls, layers: torch.nn.ModuleList, config: PretrainedConfig) -> None:
        """
        Gives every layer `LeanSelfAttention` (below) over the same weights: HF's eager
        kernel (all RoBERTa has under transformers 4.43) stores a `batch x heads x T x T`
        probability tensor per layer; HF's SDPA kernel takes SDPA's slow math path with dropout
        on the CPU. Relative position embeddings and decoders keep HF's own module.
        """
        for layer in layers:
            attention = layer.attention.self
            if not _is_bert_like_self_attention(attention):
                continue
            if attention.position_embedding_type != "absolute" or attention.is_decoder:
                continue  # SDPA cannot express relative positions; keep the eager kernel
            lean = LeanSelfAttention(attention, num_heads=config.num_attention_heads)
            lean.train(attention.training)
            layer.attention.self = lean

    @classmethod
    def load_lm_head(cls, model_name: str) -> torch.nn.Module:
        with quiet_hf_loading():
            model, info = AutoModelForMaskedLM.from_pretrained(
                resolve_model_name(model_name), output_loading_info=True
            )
        missing = [key for key in info["missing_keys"] if key.startswith(cls.lm_head_prefix)]
        if missing:
            raise ConfigurationError(
                f"model_name={model_name!r} has no pretrained masked-LM head (missing weights: "
                f"{', '.join(missing[:4])}). The verbalizer path of late_prompt_classifier needs "
                f"one; use basic_classifier with a linear head for this model instead."
            )
        return getattr(model, cls.lm_head_prefix.rstrip("."))


@register_family
class BertFamily(EncoderFamily):
    name = "bert"
    model_types = ("bert",)
    lm_head_prefix = "cls."


def _is_bert_like_self_attention(module: torch.nn.Module) -> bool:
    """BERT's (eager or SDPA) or RoBERTa's eager self-attention: query, key, value, dropout."""
    if isinstance(module, BertSelfAttention):
        return True
    from transformers.models.roberta.modeling_roberta import RobertaSelfAttention

    return isinstance(module, RobertaSelfAttention)


class LeanSelfAttention(torch.nn.Module):
    """
    What HuggingFace's eager `BertSelfAttention` / `RobertaSelfAttention` computes, over the same
    query/key/value weights (shared, not copied), through the core's `attend` kernel.

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

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        encoder_hidden_states: Optional[torch.Tensor] = None,
        encoder_attention_mask: Optional[torch.Tensor] = None,
        past_key_value: Optional[Any] = None,
        output_attentions: bool = False,
    ) -> Tuple[torch.Tensor]:
        """
        # Parameters

        hidden_states : `torch.Tensor`, shape `(batch_size, seq_len, hidden_size)`
        attention_mask : `torch.Tensor`, optional, shape `(batch_size, 1, 1, seq_len)`
            Additive bias, as `core.masks.attention_bias` makes it.

        The other arguments are those HuggingFace's layers pass; the core never sets them.

        # Returns

        `(context,)`, context of shape `(batch_size, seq_len, hidden_size)`.
        """
        if head_mask is not None or encoder_hidden_states is not None or past_key_value is not None \
                or output_attentions:
            raise ValueError(
                "LeanSelfAttention is the encoder self-attention of late-prompt stacks: head_mask, "
                "cross-attention, past_key_value and output_attentions are not supported"
            )
        context = attend(
            self.query(hidden_states),
            self.key(hidden_states),
            self.value(hidden_states),
            attention_mask,
            num_heads=self.num_heads,
            dropout_p=self.dropout.p,
            training=self.training,
        )
        return (context,)
