from typing import Optional

import torch
from allennlp.modules.token_embedders.token_embedder import TokenEmbedder

from allennlp_lpt.core import LowerStack
from allennlp_lpt.modules import pairing


@TokenEmbedder.register("late_prompt_transformer")
class LatePromptTransformerEmbedder(TokenEmbedder):
    """
    The frozen part of a late-prompt backbone: the embeddings and the layers below the prompt
    layer, run without an autograd graph (they train nothing and keep no activations). Its
    output is the layer-`prompt_layer` states that a `late_prompt_roberta` or `late_prompt_gpt2`
    encoder turns into a prompt and runs through the layers above.

    Registered as a `TokenEmbedder` with name "late_prompt_transformer". Use it with a
    `pretrained_transformer` indexer (or the `lpt_*` readers) of the same model.

    # Parameters

    model_name : `str`
        A HuggingFace model folder or hub name. RoBERTa, BERT-like and GPT-2 models are supported.
    prompt_layer : `int`
        How many backbone layers run before the prompt is inserted (k in the paper; 0 means
        input-level prompt tuning). Must equal the encoder's.
    lower_dropout : `bool`, optional (default = `True`)
        Whether dropout stays active in these frozen layers during training, as in the authors'
        code (the whole model in train mode). `False` runs them in eval mode, which makes their
        output a deterministic function of the input.
    """

    def __init__(self, model_name: str, *, prompt_layer: int, lower_dropout: bool = True) -> None:
        super().__init__()
        self.model_name = model_name
        self.prompt_layer = prompt_layer
        self.lower_dropout = lower_dropout
        self.stack = LowerStack(model_name, prompt_layer)
        pairing.announce_lower(self)

    @property
    def family(self):
        return self.stack.family

    def get_output_dim(self) -> int:
        return self.stack.hidden_size

    def train(self, mode: bool = True) -> "LatePromptTransformerEmbedder":
        super().train(mode)
        if not self.lower_dropout:
            self.stack.eval()
        return self

    def forward(
        self,
        token_ids: torch.LongTensor,
        mask: torch.BoolTensor,
        type_ids: Optional[torch.LongTensor] = None,
        segment_concat_mask: Optional[torch.BoolTensor] = None,
    ) -> torch.Tensor:  # type: ignore
        """
        # Parameters

        token_ids : `torch.LongTensor`, shape `(batch_size, num_wordpieces)`
        mask : `torch.BoolTensor`, shape `(batch_size, num_wordpieces)`
        type_ids : `torch.LongTensor`, optional, shape `(batch_size, num_wordpieces)`
        segment_concat_mask : not supported (the indexer's `max_length` folding would split
            instances into segments that the prompt cannot span).

        # Returns

        `torch.Tensor`, shape `(batch_size, num_wordpieces, hidden_size)`, with no grad_fn.
        """
        if segment_concat_mask is not None:
            raise ValueError(
                "late_prompt_transformer does not support the indexer's max_length folding; "
                "remove max_length from the pretrained_transformer indexer and truncate in the "
                "dataset reader instead."
            )
        return self.stack(token_ids, mask, type_ids)
