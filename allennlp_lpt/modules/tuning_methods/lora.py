from typing import List, Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import (
    PeftMethod,
    TuningMethod,
    at_least_one,
    check_targets,
    import_peft,
)


@TuningMethod.register("lora")
class Lora(PeftMethod):
    """
    LoRA (Hu et al., 2021): a trainable low-rank update `B A` beside each targeted weight,
    scaled by `alpha / r`; the weight itself stays frozen. Built on PEFT's `LoraConfig`.

    Registered as a `TuningMethod` with name "lora".

    # Parameters

    r : `int`, optional (default = `8`)
        The rank of the update.
    alpha : `float`, optional (default = `8`)
        The update is scaled by `alpha / r`.
    dropout : `float`, optional (default = `0.1`)
        Dropout on the update's input.
    target_modules : `List[str]`, optional
        The modules that get an update, by name or dotted suffix (PEFT's matching). Default: the
        family's attention query and value projections (BERT-like `query`, `value`; GPT-2
        `c_attn`, which holds queries, keys and values; Llama family `q_proj`, `v_proj`), as in
        the LoRA paper.
    """

    title = "LoRA"
    trains = "low-rank updates of the attention's query and value projections"
    lr = 5e-4
    lr_range = (1e-4, 3e-3)
    source = "LoRA paper (Hu et al., 2021), RoBERTa-base on GLUE: r 8, alpha 8, lr 5e-4"
    needs = ("attention_projections",)


    def __init__(
        self,
        r: int = 8,
        alpha: float = 8.0,
        dropout: float = 0.1,
        target_modules: Optional[List[str]] = None,
    ) -> None:
        key = self.key
        self.r = at_least_one(r, f"{key}.r")
        self.alpha = alpha
        if not 0 <= dropout < 1:
            raise ConfigurationError(f"{key}.dropout={dropout!r}: give a probability in [0, 1).")
        self.dropout = dropout
        self.target_modules = target_modules

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily],
        model_name: str, *, task_type: Optional[str] = None,
    ):
        peft = import_peft(self.key)
        if not self.target_modules:
            self.check_family(family, model_name, key=f"{self.key}.target_modules")
        targets = list(self.target_modules or family.attention_projections)
        check_targets(model, targets, key=f"{self.key}.target_modules", family=family, model_name=model_name)
        return peft.LoraConfig(
            task_type=self.task_type(peft, task_type), r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
            target_modules=targets,
            fan_in_fan_out=family.name == "gpt2",  # GPT-2's Conv1D stores its weight transposed
        )

    def describe(self) -> str:
        return f"lora (r={self.r}, alpha={self.alpha:g}, dropout={self.dropout:g})"
