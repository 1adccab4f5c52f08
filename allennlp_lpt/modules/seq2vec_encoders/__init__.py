from allennlp_lpt.modules.seq2vec_encoders.late_prompt_encoder import LatePromptEncoder
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_causal import LatePromptCausalEncoder
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_gpt2 import LatePromptGPT2Encoder
from allennlp_lpt.modules.seq2vec_encoders.late_prompt_roberta import LatePromptRobertaEncoder

__all__ = [
    "LatePromptCausalEncoder",
    "LatePromptEncoder",
    "LatePromptGPT2Encoder",
    "LatePromptRobertaEncoder",
]
