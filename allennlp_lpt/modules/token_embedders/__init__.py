from allennlp_lpt.modules.token_embedders.late_prompt_transformer import (
    LatePromptTransformerEmbedder,
)

__all__ = ["LatePromptTransformerEmbedder"]
