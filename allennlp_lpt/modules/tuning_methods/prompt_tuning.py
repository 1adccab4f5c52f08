from typing import Optional, Type

import torch
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import PeftMethod, TuningMethod, at_least_one, import_peft


@TuningMethod.register("prompt_tuning")
class PromptTuning(PeftMethod):
    """
    Prompt tuning (Lester et al., 2021): a trainable soft prompt of `num_virtual_tokens`
    vectors before the input embeddings; the model is frozen. Built on PEFT's
    `PromptTuningConfig`. (Late prompt with `prompt_layer: 0` is the same idea with a prompt
    generated per instance.)

    The prompt positions come first, so the tokens sit `num_virtual_tokens` positions later than
    without it (PEFT's behaviour); `peft_transformer` drops the prompt from its output. Token
    type ids are not passed (PEFT drops them for prompt methods).

    Registered as a `TuningMethod` with name "prompt_tuning".

    # Parameters

    num_virtual_tokens : `int`, optional (default = `20`)
    init_text : `str`, optional
        Initialise the prompt from the embeddings of this text's tokens (repeated to the
        prompt's length); default: random (PEFT's `RANDOM`).
    """

    title = "prompt tuning"
    trains = "a soft prompt before the input embeddings"
    lr = 3e-2
    lr_range = (1e-3, 3e-1)
    source = "PEFT's prompt-tuning examples (AdamW 3e-2); Lester et al. (2021) used Adafactor at 0.3"


    def __init__(self, num_virtual_tokens: int = 20, init_text: Optional[str] = None) -> None:
        key = self.key
        self.virtual_tokens = at_least_one(num_virtual_tokens, f"{key}.num_virtual_tokens")
        if init_text is not None and not init_text.strip():
            raise ConfigurationError(f"{key}.init_text is empty; give some text or leave it out.")
        self.init_text = init_text

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily],
        model_name: str, *, task_type: Optional[str] = None,
    ):
        peft = import_peft(self.key)
        options = {}
        if self.init_text is not None:
            from allennlp_lpt.core import resolve_model_name

            options = {"prompt_tuning_init": peft.PromptTuningInit.TEXT, "prompt_tuning_init_text": self.init_text,
                       "tokenizer_name_or_path": resolve_model_name(model_name)}
        return peft.PromptTuningConfig(
            task_type=self.task_type(peft, task_type), num_virtual_tokens=self.virtual_tokens, **options
        )

    def describe(self) -> str:
        return f"prompt_tuning ({self.virtual_tokens} virtual tokens)"
