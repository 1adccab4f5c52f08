from typing import Type

import torch

from allennlp_lpt.core.family import BackboneFamily
from allennlp_lpt.modules.tuning_methods.tuning_method import TuningMethod, WholeModelMethod


@TuningMethod.register("full")
class FullFineTuning(WholeModelMethod):
    """
    Full fine-tuning: every weight trains (AllenNLP's `pretrained_transformer` with
    `train_parameters: true`).

    Registered as a `TuningMethod` with name "full". It takes no options.
    """

    title = "full fine-tuning"
    trains = "every weight"
    lr = 5e-5
    lr_range = (1e-5, 1e-4)
    source = "BERT paper (Devlin et al., 2019): fine-tuning lr 2e-5 to 5e-5"

    def apply_to_classifier(
        self, model: torch.nn.Module, family: Type[BackboneFamily], model_name: str
    ) -> torch.nn.Module:
        return model.requires_grad_(True)
