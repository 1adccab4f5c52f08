from typing import Any, List, Optional, Type

import torch

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import TuningMethod, WholeModelMethod


@TuningMethod.register("bitfit")
class BitFit(WholeModelMethod):
    """
    BitFit (Ben Zaken et al., 2022): only the biases of the pretrained model train (and the
    head). Every other backbone weight of AllenNLP's `pretrained_transformer` is frozen through
    the optimizer's `parameter_groups` (`requires_grad: false`, AllenNLP's own mechanism), and
    the biases train without weight decay.

    Registered as a `TuningMethod` with name "bitfit". It takes no options.
    """

    title = "BitFit"
    trains = "the biases"
    component = "pretrained_transformer, train_parameters: true, parameter_groups freezing all but biases"
    lr = 1e-3
    lr_range = (1e-4, 1e-2)
    source = "BitFit paper (Ben Zaken et al., 2022): lr 1e-3"

    @classmethod
    def parameter_groups(cls) -> Optional[List[Any]]:
        return [
            [["^_text_field_embedder\\..*(?<!\\.bias)$"], {"requires_grad": False}],
            [["\\.bias$"], {"weight_decay": 0.0}],
        ]

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        head = model.base_model_prefix  # everything outside the base model is the new head
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.endswith(".bias") or not name.startswith(head + "."))
        return model
