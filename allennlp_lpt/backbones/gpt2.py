"""GPT-2: a causal decoder with learned positions, `h` layers and a final `ln_f`."""
from typing import Optional

import torch
from transformers import AutoModel, AutoModelForCausalLM, PretrainedConfig, PreTrainedModel

from allennlp_lpt.core.family import (
    BackboneFamily,
    quiet_hf_loading,
    register_family,
    resolve_model_name,
)


class GPT2Embeddings(torch.nn.Module):
    """Token plus position embeddings, then dropout, as `GPT2Model.forward` computes them."""

    def __init__(self, wte: torch.nn.Embedding, wpe: torch.nn.Embedding, drop: torch.nn.Dropout):
        super().__init__()
        self.wte = wte
        self.wpe = wpe
        self.drop = drop

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        # GPT-2 would embed token_type_ids with its word embeddings; AllenNLP's indexer passes
        # all-zero type ids, which would add the embedding of token 0 everywhere, so they are
        # ignored.
        positions = torch.arange(input_ids.size(1), device=input_ids.device)
        return self.drop(self.wte(input_ids) + self.wpe(positions)[None])


@register_family
class GPT2Family(BackboneFamily):
    name = "gpt2"
    model_types = ("gpt2",)
    is_causal = True
    encoder_type = "late_prompt_gpt2"

    @classmethod
    def hidden_dropout(cls, config: PretrainedConfig) -> float:
        return float(config.resid_pdrop)

    @classmethod
    def load_base_model(
        cls, model_name: str, *, num_layers: Optional[int] = None
    ) -> PreTrainedModel:
        overrides = {} if num_layers is None else {"n_layer": num_layers}
        with quiet_hf_loading():
            return AutoModel.from_pretrained(resolve_model_name(model_name), **overrides)

    @classmethod
    def embeddings(cls, model: PreTrainedModel) -> torch.nn.Module:
        return GPT2Embeddings(model.wte, model.wpe, model.drop)

    @classmethod
    def layers(cls, model: PreTrainedModel) -> torch.nn.ModuleList:
        return model.h

    @classmethod
    def final_norm(cls, model: PreTrainedModel) -> torch.nn.Module:
        return model.ln_f

    @classmethod
    def load_lm_head(cls, model_name: str) -> torch.nn.Module:
        # GPT-2's LM head is tied to the word embeddings, so it always exists.
        with quiet_hf_loading():
            return AutoModelForCausalLM.from_pretrained(resolve_model_name(model_name)).lm_head
