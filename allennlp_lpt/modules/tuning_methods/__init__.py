"""Parameter-efficient tuning methods for `peft_transformer`, one per file, each built on PEFT."""
from allennlp_lpt.modules.tuning_methods.tuning_method import TuningMethod
from allennlp_lpt.modules.tuning_methods.ia3 import IA3
from allennlp_lpt.modules.tuning_methods.lora import Lora
from allennlp_lpt.modules.tuning_methods.prefix_tuning import PrefixTuning
from allennlp_lpt.modules.tuning_methods.prompt_tuning import PromptTuning

__all__ = ["IA3", "Lora", "PrefixTuning", "PromptTuning", "TuningMethod"]
