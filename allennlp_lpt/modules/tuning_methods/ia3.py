from typing import List, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import (
    PeftMethod,
    TuningMethod,
    check_targets,
    import_peft,
    weight_module_names,
)


@TuningMethod.register("ia3")
class IA3(PeftMethod):
    """
    (IA)^3 (Liu et al., 2022): trainable vectors that rescale the keys, the values and the
    feed-forward activations; nothing else trains. Built on PEFT's `IA3Config`.

    Registered as a `TuningMethod` with name "ia3".

    # Parameters

    target_modules : `List[str]`, optional
        The modules whose outputs (or, for feed-forward modules, inputs) are rescaled. Default:
        PEFT's choice for the model type (BERT-like `key`, `value`, `output.dense`; GPT-2
        `c_attn`, `mlp.c_proj`; Llama `k_proj`, `v_proj`, `down_proj`; Qwen2 `q_proj`,
        `v_proj`, `down_proj`).
    feedforward_modules : `List[str]`, optional
        Which of `target_modules` are feed-forward layers (their input is rescaled). Default:
        PEFT's choice for the model type.
    """

    title = "(IA)^3"
    trains = "rescaling vectors of keys, values and feed-forward inputs"
    lr = 3e-3
    lr_range = (1e-3, 3e-2)
    source = "(IA)^3 paper (Liu et al., 2022): lr 3e-3; PEFT's target modules per model type"


    def __init__(
        self,
        target_modules: Optional[List[str]] = None,
        feedforward_modules: Optional[List[str]] = None,
    ) -> None:
        key = self.key
        if (target_modules is None) != (feedforward_modules is None):
            raise ConfigurationError(
                f"{key}: give target_modules and feedforward_modules together (the feed-forward "
                f"ones are a subset of the targets), or neither for PEFT's defaults."
            )
        if target_modules is not None and not set(feedforward_modules or []) <= set(target_modules):
            extra = sorted(set(feedforward_modules or []) - set(target_modules))
            raise ConfigurationError(
                f"{key}.feedforward_modules: {extra} are not in target_modules; every "
                f"feed-forward module must also be a target."
            )
        self.target_modules = target_modules
        self.feedforward_modules = feedforward_modules

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily],
        model_name: str, *, task_type: Optional[str] = None,
    ):
        peft = import_peft(self.key)
        from peft.utils.constants import (
            TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as FEEDFORWARD,
            TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as TARGETS,
        )

        targets, feedforward = self.target_modules, self.feedforward_modules
        if targets is None:
            if config.model_type not in TARGETS:
                raise ConfigurationError(
                    f"{self.key}: PEFT has no default (IA)^3 modules for model type "
                    f"{config.model_type!r}; give {self.key}.target_modules and "
                    f"{self.key}.feedforward_modules (weight modules of this model: "
                    f"{', '.join(weight_module_names(model))})."
                )
            targets, feedforward = list(TARGETS[config.model_type]), list(FEEDFORWARD[config.model_type])
        check_targets(model, targets, key=f"{self.key}.target_modules", family=family, model_name=model_name)
        return peft.IA3Config(
            task_type=self.task_type(peft, task_type), target_modules=targets, feedforward_modules=feedforward,
            fan_in_fan_out=family.name == "gpt2",
        )

    def describe(self) -> str:
        return "ia3"

