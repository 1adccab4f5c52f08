from typing import Any, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import PeftMethod, TuningMethod, at_least_one, import_peft


@TuningMethod.register("prefix_tuning")
class PrefixTuning(PeftMethod):
    """
    Prefix tuning as P-tuning v2 runs it (Li & Liang, 2021; Liu et al., 2022): trainable keys
    and values of `num_virtual_tokens` positions in every layer's attention, which every token
    attends to; the model is frozen. Built on PEFT's `PrefixTuningConfig` (the prefix enters as
    past keys and values, so positions start after it, PEFT's behaviour). The output has one
    state per token (no prefix positions).

    Registered as a `TuningMethod` with name "prefix_tuning".

    # Parameters

    num_virtual_tokens : `int`, optional (default = `20`)
    prefix_projection : `bool`, optional (default = `False`)
        Reparameterise the prefix through a two-layer MLP (prefix tuning's original recipe);
        P-tuning v2 trains the prefix directly.
    encoder_hidden_size : `int`, optional (default = `512`)
        The MLP's hidden size, with `prefix_projection`.
    """

    title = "prefix tuning (P-tuning v2)"
    trains = "keys and values of the prefix positions in every layer"
    lr = 1e-2
    lr_range = (1e-3, 3e-2)
    source = "P-tuning v2 (Liu et al., 2022): lr 5e-3 to 1e-2, prefixes of 8 to 20"


    def __init__(
        self,
        num_virtual_tokens: int = 20,
        prefix_projection: bool = False,
        encoder_hidden_size: int = 512,
    ) -> None:
        key = self.key
        self.num_virtual_tokens = at_least_one(num_virtual_tokens, f"{key}.num_virtual_tokens")
        self.prefix_projection = prefix_projection
        self.encoder_hidden_size = at_least_one(encoder_hidden_size, f"{key}.encoder_hidden_size")

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        # PEFT 0.21.2 hands a classifier the prefix only where its `forward` names
        # `past_key_values`; transformers 5's classifiers take it through `**kwargs` (renamed
        # `cache`). This model's own forward is given that name (the instance's, nothing shared).
        classify = model.forward

        def forward(*args: Any, past_key_values: Any = None, **kwargs: Any) -> Any:
            return classify(*args, cache=past_key_values, **kwargs)

        model.forward = forward
        return super().apply_to_classifier(model, family, model_name)

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily],
        model_name: str, *, task_type: Optional[str] = None,
    ):
        if not family.takes_past_key_values:
            raise ConfigurationError(
                f"{self.key}: {model_name!r} is a {config.model_type!r} model, whose attention "
                f"takes no past keys and values, the way prefix tuning's prefix enters; use "
                f"prompt_tuning, lora or late prompt for this model."
            )
        peft = import_peft(self.key)
        return peft.PrefixTuningConfig(
            task_type=self.task_type(peft, task_type), num_virtual_tokens=self.num_virtual_tokens,
            prefix_projection=self.prefix_projection, encoder_hidden_size=self.encoder_hidden_size,
        )

    def describe(self) -> str:
        return f"prefix_tuning ({self.num_virtual_tokens} virtual tokens per layer)"
