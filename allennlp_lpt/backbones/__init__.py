"""One adapter per backbone family; importing this package registers them all."""
from allennlp_lpt.backbones.bert import BertFamily
from allennlp_lpt.backbones.gpt2 import GPT2Family
from allennlp_lpt.backbones.llama import LlamaFamily
from allennlp_lpt.backbones.roberta import RobertaFamily

__all__ = ["BertFamily", "GPT2Family", "LlamaFamily", "RobertaFamily"]
