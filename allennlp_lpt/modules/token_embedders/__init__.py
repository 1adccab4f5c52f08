from allennlp_lpt.modules.token_embedders.late_prompt_transformer import (
    LatePromptTransformerEmbedder,
)
from allennlp_lpt.modules.token_embedders.peft_transformer import PeftTransformerEmbedder

__all__ = ["LatePromptTransformerEmbedder", "PeftTransformerEmbedder"]
