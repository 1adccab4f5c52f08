from typing import Type

from allennlp.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_causal import LatePromptCausalEncoder


@Seq2VecEncoder.register("late_prompt_gpt2")
class LatePromptGPT2Encoder(LatePromptCausalEncoder):
    """
    `late_prompt_causal` under the name the GPT-2 configs use: late prompt tuning for GPT-2,
    pooling the last real token's final state (after `ln_f`).

    Registered as a `Seq2VecEncoder` with name "late_prompt_gpt2".

    # Parameters

    model_name, prompt_layer, prompt_length, generator, backbone_dtype, compile, compile_backend,
    save_backbone
        As in `LatePromptEncoder`.
    """

    encoder_type = "late_prompt_gpt2"

    @classmethod
    def serves(cls, family: Type[BackboneFamily]) -> bool:
        return family.name == "gpt2"
