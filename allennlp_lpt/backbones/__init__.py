"""One adapter per backbone family; importing this package registers them all."""
from allennlp_lpt.backbones.bert import BertFamily
from allennlp_lpt.backbones.gpt2 import GPT2Family
from allennlp_lpt.backbones.llama import LlamaFamily
from allennlp_lpt.backbones.modernbert import ModernBertFamily
from allennlp_lpt.backbones.qwen3 import Qwen3Family
from allennlp_lpt.backbones.roberta import RobertaFamily

__all__ = ["BertFamily", "GPT2Family", "LlamaFamily", "ModernBertFamily", "Qwen3Family", "RobertaFamily"]
