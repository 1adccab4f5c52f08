"""
The parameter-efficient methods that `peft_transformer` applies to a frozen backbone, each built
on PEFT: what a method is, and the checks every method shares.
"""
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, List, Sequence, Type

import torch
from allennlp.common import Registrable
from allennlp.common.checks import ConfigurationError
from transformers import PretrainedConfig

from allennlp_lpt.core.family import BackboneFamily

if TYPE_CHECKING:
    import peft

PEFT_FIX = "pip install -r requirements.txt (peft==0.12.0, the release pinned for transformers 4.43)"


def import_peft(key: str) -> ModuleType:
    """The `peft` module; where it is missing or does not import, a ConfigurationError naming
    the config key that asked for it and the fix."""
    try:
        return importlib.import_module("peft")
    except ImportError as error:
        raise ConfigurationError(
            f"{key}: this method is built on PEFT, which does not import here ({error}). "
            f"Fix: {PEFT_FIX}."
        ) from None


def at_least_one(value: int, key: str) -> int:
    """`value` where it is an int of 1 or more, else a ConfigurationError naming `key`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{key}={value!r}: give an integer of 1 or more.")
    return value


def weight_module_names(model: torch.nn.Module) -> List[str]:
    """The distinct last names of the modules of `model` that hold a weight matrix (linear and
    GPT-2's Conv1D layers): what `target_modules` can name."""
    names = set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if name and isinstance(weight, torch.Tensor) and weight.dim() == 2 and not isinstance(module, torch.nn.Embedding):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def check_targets(
    model: torch.nn.Module, targets: Sequence[str], *, key: str, family: Type[BackboneFamily], model_name: str
) -> None:
    """Every entry of `targets` names a module of `model` the way PEFT matches them (the full
    dotted name or a dotted suffix of it); one that names none is a ConfigurationError listing
    the modules this family has."""
    names = [name for name, _ in model.named_modules() if name]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigurationError(
            f"{key}: {model_name!r} ({family.name} family) has no module named "
            f"{', '.join(map(repr, missing))}. Its weight modules are: "
            f"{', '.join(weight_module_names(model))}; a dotted suffix such as "
            f"'attention.output.dense' picks one among those of the same name."
        )


class TuningMethod(Registrable):
    """
    A parameter-efficient tuning method that PEFT applies to a frozen backbone. Each registered
    method validates its options when it is built (a ConfigurationError names the key) and
    turns them into a PEFT config for the backbone it is given.

    `virtual_tokens` is how many positions the method puts before the input (prompt tuning's
    soft prompt); `peft_transformer` drops them from its output, so states stay aligned with
    the tokens.
    """

    virtual_tokens: int = 0
    # Where the method sits in a config, for messages.
    key = "peft_transformer.method"

    def peft_config(
        self, model: torch.nn.Module, config: PretrainedConfig, family: Type[BackboneFamily], model_name: str
    ) -> "peft.PeftConfig":
        """The PEFT config of this method for `model` (the HuggingFace base transformer)."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short description for logs, e.g. `lora (r=8, alpha=8)`."""
        raise NotImplementedError

    @staticmethod
    def task_type(peft_module: ModuleType) -> "peft.TaskType":
        # Feature extraction: PEFT's forward returns the transformer's own output (hidden
        # states), with its prompt and prefix handling for the methods that need it.
        return peft_module.TaskType.FEATURE_EXTRACTION
