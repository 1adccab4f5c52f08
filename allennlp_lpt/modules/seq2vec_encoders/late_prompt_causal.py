from typing import Type

import torch
from allennlp.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

from allennlp_lpt.core.family import BackboneFamily, last_true_index
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_encoder import LatePromptEncoder


@Seq2VecEncoder.register("late_prompt_causal")
class LatePromptCausalEncoder(LatePromptEncoder):
    """
    Late prompt tuning for causal decoders: GPT-2 and the Llama family (Llama, Mistral, Qwen2).
    The prompt is prepended under the causal mask (every real token sees every prompt vector;
    prompt i sees prompts <= i), the naive generator reads the last real token, and the vector
    returned is the last real token's final state (after the final norm), the only one that has
    seen the whole input. Inputs must be right-padded, as AllenNLP pads them.

    Registered as a `Seq2VecEncoder` with name "late_prompt_causal" (and, for GPT-2 configs,
    "late_prompt_gpt2").

    # Parameters

    model_name, prompt_layer, prompt_length, generator, backbone_dtype, compile, compile_backend,
    save_backbone
        As in `LatePromptEncoder`.
    """

    encoder_type = "late_prompt_causal"

    @classmethod
    def serves(cls, family: Type[BackboneFamily]) -> bool:
        return family.is_causal

    def pool(self, final_states: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        index = last_true_index(mask)
        return final_states[torch.arange(final_states.size(0), device=index.device), index]
