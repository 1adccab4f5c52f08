from typing import Type

import torch
from allennlp.common.checks import ConfigurationError
from allennlp.common.lazy import Lazy
from allennlp.modules.seq2vec_encoders.seq2vec_encoder import Seq2VecEncoder

from allennlp_lpt.generators import NaivePromptGenerator, PromptGenerator
from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_encoder import LatePromptEncoder


@Seq2VecEncoder.register("late_prompt_roberta")
class LatePromptRobertaEncoder(LatePromptEncoder):
    """
    Late prompt tuning for bidirectional encoders: RoBERTa and BERT-like models (BERT, MiniLM).
    The naive generator reads the first token (`<s>` / `[CLS]`).

    Registered as a `Seq2VecEncoder` with name "late_prompt_roberta".

    # Parameters

    model_name, prompt_layer, prompt_length, generator, backbone_dtype, compile, compile_backend, save_backbone
        As in `LatePromptEncoder`.
    pooling : `str`, optional (default = `"first"`)
        How the final states become one vector: `"first"` takes the first token's final state
        (`<s>` / `[CLS]`), `"mean"` averages the final states of the real tokens (how
        sentence-transformers models such as all-MiniLM-L6-v2 were trained).
    """

    encoder_type = "late_prompt_roberta"

    @classmethod
    def serves(cls, family: Type[BackboneFamily]) -> bool:
        return not family.is_causal
    POOLINGS = ("first", "mean")

    def __init__(
        self,
        model_name: str,
        *,
        prompt_layer: int,
        prompt_length: int = 5,
        generator: Lazy[PromptGenerator] = Lazy(NaivePromptGenerator),
        pooling: str = "first",
        backbone_dtype: str = "float32",
        compile: bool = False,
        compile_backend: str = "inductor",
        save_backbone: bool = True,
    ) -> None:
        if pooling not in self.POOLINGS:
            raise ConfigurationError(
                f"pooling={pooling!r} is not one of {', '.join(map(repr, self.POOLINGS))}."
            )
        super().__init__(
            model_name,
            prompt_layer=prompt_layer,
            prompt_length=prompt_length,
            generator=generator,
            backbone_dtype=backbone_dtype,
            compile=compile,
            compile_backend=compile_backend,
            save_backbone=save_backbone,
        )
        self.pooling = pooling

    def pool(self, final_states: torch.Tensor, mask: torch.BoolTensor) -> torch.Tensor:
        if self.pooling == "first":
            return final_states[:, 0]
        weights = mask.to(final_states.dtype).unsqueeze(-1)
        return (final_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
