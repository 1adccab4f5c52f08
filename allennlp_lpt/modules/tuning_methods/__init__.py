"""
The tuning methods, one per file: late prompt, and the methods it is compared with (LoRA,
(IA)^3, prompt and prefix tuning through PEFT for `peft_transformer`; BitFit and full
fine-tuning through AllenNLP's `pretrained_transformer`). Every module of this folder is
imported here, which registers its method: a new method is one new file.
"""
import importlib
import pkgutil

from allennlp_lpt.modules.tuning_methods.tuning_method import PeftMethod, TuningMethod, WholeModelMethod

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

from allennlp_lpt.modules.tuning_methods.bitfit import BitFit  # noqa: E402
from allennlp_lpt.modules.tuning_methods.full import FullFineTuning  # noqa: E402
from allennlp_lpt.modules.tuning_methods.ia3 import IA3  # noqa: E402
from allennlp_lpt.modules.tuning_methods.late_prompt import LatePrompt  # noqa: E402
from allennlp_lpt.modules.tuning_methods.lora import Lora  # noqa: E402
from allennlp_lpt.modules.tuning_methods.prefix_tuning import PrefixTuning  # noqa: E402
from allennlp_lpt.modules.tuning_methods.prompt_tuning import PromptTuning  # noqa: E402


def method_names() -> list:
    """Every registered method: late prompt first, then the others alphabetically."""
    names = sorted(TuningMethod.list_available())
    return ["late_prompt"] + [name for name in names if name != "late_prompt"]


__all__ = ["BitFit", "FullFineTuning", "IA3", "LatePrompt", "Lora", "PeftMethod", "PrefixTuning",
           "PromptTuning", "TuningMethod", "WholeModelMethod", "method_names"]
