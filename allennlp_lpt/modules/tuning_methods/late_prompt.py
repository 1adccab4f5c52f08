from typing import Any, Dict, Optional, Type

import torch

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import TuningMethod


@TuningMethod.register("late_prompt")
class LatePrompt(TuningMethod):
    """
    Late prompt tuning (Liu et al., 2022), this package's subject: a generator reads the frozen
    states of the prompt layer and writes a short prompt that the layers above read. Its
    components (`late_prompt_transformer` and a `late_prompt_*` encoder, or
    `late_prompt_classifier`) are configured in the base config itself, so the swap keeps the
    config as it is (only a learning rate given to `lpt-compare` changes it); prompt layer,
    length and generator are set there (`-o`, or a search over those config keys).

    Registered as a `TuningMethod` with name "late_prompt". It takes no options.
    """

    title = "late prompt"
    trains = "the prompt generator (and a head, where the model has one)"
    component = "late_prompt_transformer + a late_prompt_* encoder"
    lr = None
    lr_range = (1e-4, 1e-2)
    source = "the base config (late prompt tuning paper: 1e-3 for RoBERTa-large, 5e-4 for GPT2-large)"

    @classmethod
    def embedder(cls, tokens: Dict[str, Any], options: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return None

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        raise NotImplementedError(
            "late prompt runs through this package's own components, not a HuggingFace classifier"
        )
