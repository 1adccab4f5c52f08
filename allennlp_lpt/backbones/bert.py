"""BERT-like bidirectional encoders (BERT, MiniLM): embeddings, `encoder.layer`, no final norm."""
from typing import Optional

import torch
from allennlp.common.checks import ConfigurationError
from transformers import AutoModel, AutoModelForMaskedLM, PretrainedConfig, PreTrainedModel
from transformers.models.bert.modeling_bert import BertSelfAttention

from allennlp_lpt.core.attention import LeanSelfAttention
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
        Gives every layer the core's `LeanSelfAttention` over the same weights: HF's eager
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
            lean = LeanSelfAttention(
                attention,
                num_heads=config.num_attention_heads,
                dropout_p=float(config.attention_probs_dropout_prob),
            )
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
