from allennlp_lpt.modules.token_embedders.late_prompt_transformer import (
    LatePromptTransformerEmbedder,
)
from allennlp_lpt.modules.token_embedders.peft_transformer import PeftTransformerEmbedder
from allennlp_lpt.modules.token_embedders.reft_transformer import ReftTransformerEmbedder
from allennlp_lpt.modules.token_embedders.whole_transformer import WholeTransformerEmbedder

__all__ = ["LatePromptTransformerEmbedder", "PeftTransformerEmbedder", "ReftTransformerEmbedder",
           "WholeTransformerEmbedder"]
